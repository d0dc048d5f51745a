"""Check the published asv history in headless Chromium with no network but 127.0.0.1.

Serves ``asv_bench/html`` (``history.py``'s output) on 127.0.0.1, opens it in Chromium
(Debian's ``chromium``) driven over the DevTools protocol (``--remote-debugging-pipe``: no
extra packages), every host but 127.0.0.1 unresolvable and a proxy that refuses, and checks:

- no request left 127.0.0.1 and every request was answered (no 404: the vendored scripts,
  stylesheet and fonts were all there), no JavaScript error, no redirect to asv's
  "Can not determine continental origin of swallow" page (what a CDN that cannot be reached
  gives);
- the index lists every benchmark of ``index.json``;
- each graph page (by default the reference CNN step and inference) draws its flot canvas
  with the series of ``graphs/`` (points counted from flot's own data, coloured pixels
  counted on the canvas);
- the regressions page renders its table, with one row per regression of
  ``regressions.json`` (it may hold none: the count is reported).

Screenshots go to ``asv_bench/history_screenshots/``. Run from the repository root::

    python asv_bench/check_history.py [--html DIR] [--shots DIR]
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GRAPHS = (
    "bench_cnn_step.CNNStep.track_images_per_s",
    "bench_cnn_step.CNNInference.track_images_per_s",
)
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--hide-scrollbars", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
    "--metrics-recording-only", "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-pipe",
]  # fmt: skip


class Served(http.server.SimpleHTTPRequestHandler):
    """Static files, each request's path and status recorded."""

    log: list[tuple[str, int]] = []

    def log_request(self, code="-", size="-"):
        self.log.append((self.path, int(code)))

    def log_message(self, *args):
        pass


def serve(html: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(Served, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class Chromium:
    """Chromium over the DevTools pipe (fd 3: commands in, fd 4: replies and events out)."""

    def __init__(self, binary: str, profile: Path):
        to_chrome, self._w = os.pipe()
        self._r, from_chrome = os.pipe()
        # above 10, so that moving them to 3 and 4 in the child cannot overwrite one another
        a, b = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome, from_chrome))
        for fd in (to_chrome, from_chrome):
            os.close(fd)

        def child():
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=child,
            close_fds=False,  # fds 3 and 4; Python's own are not inheritable
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(a)
        os.close(b)
        self._next, self._replies, self.events = 0, {}, []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while chunk := os.read(self._r, 1 << 16):
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self._cond:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                self._cond.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None):
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + 60
        with self._cond:
            while self._next not in self._replies:
                if not self._cond.wait(deadline - time.monotonic()):
                    raise TimeoutError(method)
        reply = self._replies.pop(self._next)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Page:
    def __init__(self, chrome: Chromium):
        self.chrome = chrome
        target = chrome.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = chrome.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]  # fmt: skip
        for domain in ("Network", "Page", "Runtime"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False})  # fmt: skip

    def send(self, method, params=None):
        return self.chrome.send(method, params, self.session)

    def open(self, url: str):
        self.send("Page.navigate", {"url": "about:blank"})
        self.send("Page.navigate", {"url": url})

    def js(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']['text']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0):
        """The value of ``expression`` once it is truthy; None after ``timeout`` seconds or
        on asv's error page."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.js(expression)
                if not value and self.js(SWALLOW):
                    return None
            except RuntimeError:
                value = None
            if value:
                return value
            time.sleep(0.25)
        return None

    def screenshot(self, path: Path):
        time.sleep(1.0)  # let flot finish its last redraw
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))


SWALLOW = "document.body && document.body.innerText.includes('continental origin of swallow')"
# flot's own series for the main graph: [label, points with a y value]
SERIES = """(() => { const plot = $('#main-graph').data('plot'); if (!plot) return null;
  return plot.getData().map(s => [s.label || '', s.data.filter(p => p && p[1] != null).length]); })()"""
# pixels of the main graph's canvas that are coloured (flot's series colours, not its grey axes)
COLOURED = """(() => { const c = document.querySelector('#main-graph canvas.flot-base'); if (!c) return -1;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) { const m = Math.max(d[i], d[i+1], d[i+2]),
    l = Math.min(d[i], d[i+1], d[i+2]); if (d[i+3] > 0 && m - l > 50) n++; } return n; })()"""
REGRESSION_ROWS = """(() => { const t = document.querySelector('#regressions-body table.table:not(.ignored)');
  if (!t) return null; return [...t.querySelectorAll('tbody tr')].map(r => r.innerText.split('\\t')[0].trim()); })()"""


def check(html: Path, shots: Path, graphs: tuple[str, ...]) -> list[str]:
    problems: list[str] = []
    index = json.loads((html / "index.json").read_text())
    expected = sorted(index["benchmarks"])
    regressions = json.loads((html / "regressions.json").read_text())["regressions"]
    shots.mkdir(parents=True, exist_ok=True)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        sys.exit("no chromium (Debian: apt-get install chromium)")
    server, base = serve(html)
    profile = Path(tempfile.mkdtemp(prefix="asv-history-chromium-"))
    chrome = Chromium(binary, profile)
    try:
        page = Page(chrome)

        # the index: every benchmark listed
        page.open(base + "index.html")
        listed = page.wait_for("document.querySelectorAll('a.benchmark-container').length && [...document.querySelectorAll('a.benchmark-container')].map(a => a.getAttribute('href').slice(1))")  # fmt: skip
        page.screenshot(shots / "index.png")
        if page.js(SWALLOW):
            problems.append("index: asv's error page (a script did not load)")
        missing = sorted(set(expected) - set(listed or []))
        print(f"index: {len(listed or [])} benchmarks listed, index.json has {len(expected)}")
        if not listed or missing:
            problems.append(f"index: not listed: {missing[:5]} ({len(missing)})")

        # graph pages: flot draws the series
        for name in graphs:
            page.open(base + "index.html#" + name)
            series = page.wait_for(f"document.querySelector('#main-graph canvas.flot-base') && {SERIES}")  # fmt: skip
            coloured = page.js(COLOURED)
            shot = shots / f"graph_{name.split('.')[1]}.png"
            page.screenshot(shot)
            points = sum(n for _, n in series or [])
            print(f"graph {name}: {len(series or [])} series, {points} points, {coloured} coloured canvas pixels -> {shot}")  # fmt: skip
            for label, n in series or []:
                print(f"    {label or '(one series)'}: {n} points")
            if not series or points == 0 or coloured < 200:
                problems.append(f"graph {name}: nothing drawn")

        # regressions: the table, one row per regression asv found
        page.open(base + "index.html#/regressions")
        rows = page.wait_for(f"!document.querySelector('#regressions-body').innerText.includes('Loading') && {REGRESSION_ROWS}")  # fmt: skip
        page.screenshot(shots / "regressions.png")
        if rows is None:
            rows = page.js(REGRESSION_ROWS)
        print(f"regressions: table with {len(rows) if rows is not None else 'no'} rows, regressions.json has {len(regressions)}")  # fmt: skip
        for row in rows or []:
            print(f"    {row}")
        if rows is None or len(rows) != len(regressions):
            problems.append("regressions: the table does not list regressions.json")

        # the network: nothing but 127.0.0.1, everything answered, no script errors
        urls, failed, errors, unmeasured = [], [], [], set()
        # benchmarks with results: asv writes graphs/<params...>/<name>.json for each
        measured = {p.stem for p in (html / "graphs").rglob("*.json") if "summary" not in p.parts}
        for event in chrome.events:
            method, params = event["method"], event.get("params", {})
            if method == "Network.requestWillBeSent":
                urls.append(params["request"]["url"])
            elif method == "Network.loadingFailed":
                failed.append(params.get("errorText"))
            elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
                url = params["response"]["url"].split("?")[0]
                name = url.removeprefix(base + "graphs/summary/").removesuffix(".json")
                if url.startswith(base + "graphs/summary/") and name not in measured:
                    unmeasured.add(name)  # the index's empty thumbnail of a benchmark not run
                else:
                    failed.append(f"{params['response']['status']} {params['response']['url']}")
            elif method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("exception", {}).get("description", params["exceptionDetails"]["text"]))  # fmt: skip
        outside = [u for u in urls if not u.startswith((base, "data:", "about:"))]
        vendored = sorted({p.split("?")[0] for p, _ in Served.log if p.startswith("/vendor/")})
        print(f"network: {len(urls)} requests, {len(outside)} outside {base}, {len(failed)} failed; {len(vendored)} vendored files served")  # fmt: skip
        for path in vendored:
            print(f"    {path}")
        if unmeasured:
            print(f"    (no summary graph, as asv leaves it, for {len(unmeasured)} listed benchmarks not run in this history)")  # fmt: skip
        if not urls or outside:
            problems.append(f"network: requests off 127.0.0.1: {outside[:5]}")
        if failed:
            problems.append(f"network: failed requests: {failed[:5]}")
        if errors:
            problems.append(f"javascript errors: {errors[:3]}")
    finally:
        chrome.close()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=HERE / "html")
    parser.add_argument("--shots", type=Path, default=HERE / "history_screenshots")
    parser.add_argument("--graph", action="append", help=f"benchmark graph to check (default {', '.join(GRAPHS)})")  # fmt: skip
    args = parser.parse_args()
    problems = check(args.html, args.shots, tuple(args.graph or GRAPHS))
    if problems:
        sys.exit("FAILED:\n  " + "\n  ".join(problems))
    print(f"ok: screenshots in {args.shots}")


if __name__ == "__main__":
    main()
