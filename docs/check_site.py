"""Check the built site in a real browser: headless Chromium, served on 127.0.0.1 only.

    python docs/check_site.py docs/_build/html        # make docs-check

1. Serves the folder on 127.0.0.1 (a free port) and crawls it over HTTP from ``index.html``:
   every internal ``href``/``src`` must answer 200, and every ``#fragment`` must name an
   element ``id`` of its page. Pages on disk that the crawl never reached are listed.
2. Starts Debian's ``chromium`` headless, driven over the DevTools protocol (a pipe, no
   extra package), with every host name but 127.0.0.1 unresolvable. Every request the pages
   make is recorded; one to any other host fails the check.
3. Loads every page; on each page with maths, checks that MathJax (from the site's own
   ``_static/mathjax``) rendered each formula: as many ``mjx-container`` elements as
   Sphinx wrote ``.math`` elements, and no ``mjx-merror``.
4. Opens ``search.html?q=im2col`` and checks that Sphinx's search lists results, among
   them the convolution "How it works" page.
5. Saves screenshots of the convolution page and the gallery index to
   ``docs/_build/screenshots/``.

Exit status 0 when every check passes; the report says what was measured either way.
"""

from __future__ import annotations

import argparse
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
import urllib.error
import urllib.parse
import urllib.request
from base64 import b64decode
from html.parser import HTMLParser
from pathlib import Path

SCREENSHOTS = {
    "howto-conv.png": "howto/conv.html",
    "gallery-index.png": "gallery/index.html",
}


# -- serving and crawling ------------------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.math = 0

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and "name" in attrs:
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.links.append(attrs[key])
        if "math" in (attrs.get("class") or "").split():
            self.math += 1


def _fetch(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read(), r.headers.get_content_type()
    except urllib.error.HTTPError as e:
        return e.code, b"", ""


def crawl(base: str) -> dict:
    """Every page and asset reachable from index.html; broken links and fragments."""
    pages: dict[str, _Links] = {}
    seen, todo = {base + "index.html"}, [base + "index.html"]
    broken, external = [], set()
    fragments: list[tuple[str, str, str]] = []
    while todo:
        url = todo.pop()
        status, body, kind = _fetch(url)
        if status != 200:
            broken.append((url, status))
            continue
        if kind != "text/html":
            continue
        parser = _Links()
        parser.feed(body.decode("utf-8", "replace"))
        pages[url] = parser
        for link in parser.links:
            target = urllib.parse.urljoin(url, link)
            parts = urllib.parse.urlsplit(target)
            if parts.scheme in ("mailto", "data", "javascript"):
                continue
            if not target.startswith(base):
                external.add(target)
                continue
            clean = urllib.parse.urlunsplit(parts._replace(fragment="", query=""))
            if clean.endswith("/"):
                clean += "index.html"
            if parts.fragment:
                fragments.append((url, clean, urllib.parse.unquote(parts.fragment)))
            if clean not in seen:
                seen.add(clean)
                todo.append(clean)
    bad_fragments = [
        (page, target, frag)
        for page, target, frag in fragments
        if target in pages and frag not in pages[target].ids
    ]
    return {
        "pages": pages,
        "resources": len(seen),
        "broken": broken,
        "bad_fragments": bad_fragments,
        "external_links": sorted(external),
    }


# -- Chromium over the DevTools protocol (a pipe) ---------------------------------------------


class Chromium:
    """Headless Chromium driven over ``--remote-debugging-pipe`` (fds 3 and 4)."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="fastdl-check-site-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        flags = [
            "--headless=new",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            # no host name resolves but 127.0.0.1: nothing can be fetched from elsewhere
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,900",
        ]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox

        def fds() -> None:  # in the child: our pipe ends become its fds 3 and 4
            high_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)  # out of 3 and 4's way first
            high_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [binary, *flags, "about:blank"],
            preexec_fn=fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        self.requests: list[str] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable", session=True)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        msg = json.loads(raw)
        if msg.get("method") == "Network.requestWillBeSent":
            self.requests.append(msg["params"]["request"]["url"])
        return msg

    def call(self, method: str, session: bool = False, timeout: float = 30, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, name: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self.events):
            if event.get("method") == name:
                return self.events.pop(i)
        while True:
            event = self._read(deadline)
            if event.get("method") == name:
                return event
            self.events.append(event)

    def goto(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_event("Page.loadEventFired")

    def js(self, expression: str, timeout: float = 30):
        result = self.call(
            "Runtime.evaluate",
            session=True,
            timeout=timeout,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, max_height: int = 5000) -> tuple[int, int]:
        width = 1280
        height = min(int(self.js("document.documentElement.scrollHeight")), max_height)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        time.sleep(0.3)
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.write_bytes(b64decode(data))
        self.call("Emulation.clearDeviceMetricsOverride", session=True)
        return width, height

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


MATH_JS = """
(async () => {
  if (!window.MathJax || !MathJax.startup) return {loaded: false};
  await MathJax.startup.promise;
  return {
    loaded: true,
    version: MathJax.version,
    math: document.querySelectorAll('.math').length,
    rendered: document.querySelectorAll('mjx-container').length,
    errors: document.querySelectorAll('mjx-merror').length,
  };
})()
"""

SEARCH_JS = """
(async () => {
  for (let i = 0; i < 100; i++) {
    const items = document.querySelectorAll('#search-results li a, .search li a');
    if (items.length) return Array.from(items, a => a.getAttribute('href'));
    await new Promise(r => setTimeout(r, 100));
  }
  return [];
})()
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built site (docs/_build/html)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--screenshots", type=Path, help="default: SITE/../screenshots")
    args = parser.parse_args(argv)
    site = args.site.resolve()
    shots = (args.screenshots or site.parent / "screenshots").resolve()
    shots.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []

    server, base = serve(site)
    try:
        start = time.perf_counter()
        found = crawl(base)
        pages = found["pages"]
        on_disk = {base + str(p.relative_to(site)) for p in site.rglob("*.html")}
        unreached = sorted(on_disk - set(pages))
        print(
            f"crawl: {len(pages)} pages and {found['resources'] - len(pages)} other files "
            f"reached from index.html over HTTP in {time.perf_counter() - start:.1f} s; "
            f"{len(on_disk)} pages on disk, {len(unreached)} not linked from the crawl"
        )
        for url in unreached:
            print(f"  not reached: {url[len(base) :]}")
        for url, status in found["broken"]:
            failures.append(f"broken internal link: {url[len(base) :]} answers {status}")
        for page, target, frag in found["bad_fragments"]:
            failures.append(f"{page[len(base) :]}: no id {frag!r} in {target[len(base) :]}")
        print(
            f"links: {len(found['broken'])} broken, {len(found['bad_fragments'])} missing "
            f"fragments; {len(found['external_links'])} links to other sites (not followed)"
        )

        browser = Chromium(args.chromium)
        try:
            start = time.perf_counter()
            total = rendered = with_math = 0
            version = None
            for url in sorted(pages):  # every page: its maths, and what it asks the network for
                browser.goto(url)
                name = url[len(base) :]
                if not pages[url].math:
                    continue
                with_math += 1
                got = browser.js(MATH_JS)
                if not got.get("loaded"):
                    failures.append(f"{name}: MathJax did not load")
                    continue
                version = got["version"]
                total += got["math"]
                rendered += got["rendered"]
                if got["rendered"] < got["math"] or got["errors"]:
                    failures.append(
                        f"{name}: {got['rendered']} of {got['math']} formulas rendered, "
                        f"{got['errors']} MathJax errors"
                    )
            print(
                f"browser: loaded all {len(pages)} pages in {time.perf_counter() - start:.1f} s; "
                f"maths: MathJax {version} rendered {rendered} formulas for {total} maths "
                f"elements on the {with_math} pages that have maths"
            )

            browser.goto(base + "search.html?q=im2col")
            hits = browser.js(SEARCH_JS, timeout=20) or []
            conv = [h for h in hits if "howto/conv" in h]
            print(f"search 'im2col': {len(hits)} results, e.g. {hits[:5]}")
            if not hits:
                failures.append("search for 'im2col' found nothing")
            elif not conv:
                failures.append("search for 'im2col' did not list howto/conv.html")

            for file, page in SCREENSHOTS.items():
                browser.goto(base + page)
                browser.js(MATH_JS)  # let the maths finish before the picture
                w, h = browser.screenshot(shots / file)
                print(f"screenshot: {shots / file} ({w}×{h})")

            elsewhere = sorted(
                {
                    u
                    for u in browser.requests
                    if not u.startswith(base) and not u.startswith(("data:", "about:", "blob:"))
                }
            )
            print(
                f"network: {len(browser.requests)} requests by the pages, "
                f"{len(elsewhere)} to anywhere but {base}"
            )
            for url in elsewhere:
                failures.append(f"a page asked for {url} (not served by the site)")
        finally:
            browser.close()
    finally:
        server.shutdown()

    if failures:
        print(f"\ncheck_site: {len(failures)} failures", file=sys.stderr)
        for f in failures:
            print(f"  - {f}", file=sys.stderr)
        return 1
    print("check_site: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
