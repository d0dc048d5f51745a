"""Run asv over the commits since the compiled kernels landed; publish the history offline-ready.

The published pages are made self-contained (asv's CDN scripts served from a vendored copy).

Run from the repository root::

    python asv_bench/history.py            # 16 commits since the kernels, the core benchmarks
    python asv_bench/history.py --quick    # 4 commits, each benchmark once: a few minutes
    python asv_bench/history.py --range d67ff2a^..main --commits 30 --bench all
    python asv_bench/history.py --publish-only    # re-publish what asv_bench/results holds

Each commit is built into asv's build cache and installed into asv's environment under
``asv_bench/env`` (``asv run HASHFILE:...``: N commits spread evenly over the range, both
ends included); the benchmark suite is always the current one (``asv_bench/benchmarks``),
and benchmarks an older commit cannot run are skipped there (``benchmarks/common.py``). Results go to
``asv_bench/results``, the pages to ``asv_bench/html``; serve them on loopback and open
http://127.0.0.1:8080 (asv's pages read their data with XHR, which browsers refuse for
``file://``; ``asv preview`` also serves them, on a random port of every interface)::

    python -m http.server --bind 127.0.0.1 --directory asv_bench/html 8080

asv's pages load jQuery, flot, bootstrap, stupidtable, blueimp-md5 and flot-orderbars from
CDNs. Those files, at the versions asv pins, are vendored in ``asv_bench/vendor`` (from the
npm registry; stupidtable 1.0.1 was never published there: its GitHub tag), each checked
against the SHA-256 recorded in ``vendor/manifest.json``, copied to ``html/vendor`` after
``asv publish``, and the pages' references rewritten to them. A page that still references
anything off the machine (a newer asv pinning other files) stops the script.
``--refresh-vendor`` downloads them again (network) and rewrites the manifest and README.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENDOR = HERE / "vendor"
BIN = Path(sys.executable).parent
# d67ff2a: "CNN kernels with NumPy twins (im2col/col2im, conv2d ..., max-pool, batched matmul)"
KERNELS_COMMIT = "d67ff2a1c4bc7821820987c376a4d73baf2ff36b"
DEFAULT_RANGE = f"{KERNELS_COMMIT}^..main"
# The benchmarks whose history matters most. asv's regressions page lists upward steps only
# (asv 0.6 has no "higher is better"), so the times (time_*) are what it can flag as a
# slowdown; the rates (track_images_per_s, track_tokens_per_s) draw the readable graphs, and
# a step up there is listed as a "regression" although it is a speed-up. The CNN step and
# inference, the convolutions, im2col and the LSTM step, with the machine's matmul ceiling
# (to tell a slower commit from a busier machine); the track_gflops rates are left out (a
# constant times images/s or a time). A full run takes 5 samples of each time in one round
# (FULL_ATTRIBUTES). Measured on the loaded 2-core machine: one commit of a similar set took
# 207 s; 16 commits should take 45-60 min. --quick: the CNN step and inference and the
# ceiling, each once (4 commits: 6-8 min).
CORE = (
    r"bench_cnn_step\.(CNNStep|CNNInference)\.(time_|track_images_per_s)"
    r"|bench_conv\.(Conv|Im2col)\.time_|bench_recurrent\.CharLSTMStep\.(time_|track_tokens)"
    r"|MatmulCeiling"
)
QUICK = r"bench_cnn_step\.(CNNStep|CNNInference)\.(time_|track_images_per_s)|MatmulCeiling"
FULL_ATTRIBUTES = ["-a", "repeat=5", "-a", "rounds=1"]

NPM = "https://registry.npmjs.org/{name}/-/{name}-{version}.tgz"
STUPIDTABLE = "https://raw.githubusercontent.com/joequery/Stupid-Table-Plugin/{version}/{path}"
# name, version, source ("npm" or "github"), licence files (all MIT, read from these files),
# and the files asv's pages load: (the URL in asv's index.html, the file's path inside the
# package). Other files the loaded ones need: extra.
PACKAGES = [
    {
        "name": "jquery",
        "version": "3.3.1",
        "source": "npm",
        "licence": ["LICENSE.txt"],
        "files": [("https://code.jquery.com/jquery-3.3.1.min.js", "dist/jquery.min.js")],
    },
    {
        "name": "flot",
        "version": "0.8.3",
        "source": "npm",
        "licence": ["LICENSE.txt"],
        # cdnjs serves its own minified copies; the npm package has the sources they came from
        "files": [
            (
                f"https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot{p}.min.js",
                f"jquery.flot{p}.js",
            )
            for p in ("", ".time", ".selection", ".categories")
        ],
    },
    {
        "name": "flot-orderbars",
        "version": "1.0.0",
        "source": "npm",
        # no licence file in the package: package.json and the script's header say MIT
        "licence": ["package.json", "js/jquery.flot.orderBars.js"],
        "files": [
            (
                "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js",
                "js/jquery.flot.orderBars.js",
            )
        ],
    },
    {
        "name": "stupidtable",
        "version": "1.0.1",
        "source": "github",
        "licence": ["LICENSE"],
        "files": [
            (
                "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js",
                "stupidtable.min.js",
            )
        ],
    },
    {
        "name": "blueimp-md5",
        "version": "2.19.0",
        "source": "npm",
        "licence": ["LICENSE.txt"],
        "files": [
            (
                "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js",
                "js/md5.min.js",
            )
        ],
    },
    {
        "name": "bootstrap",
        "version": "3.1.1",
        "source": "npm",
        "licence": ["LICENSE"],
        "files": [
            (
                "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js",
                "dist/js/bootstrap.min.js",
            ),
            (
                "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css",
                "dist/css/bootstrap.min.css",
            ),
        ],
        # bootstrap.min.css loads its icon font from ../fonts/
        "extra": [
            f"dist/fonts/glyphicons-halflings-regular.{ext}"
            for ext in ("eot", "svg", "ttf", "woff")
        ],
    },
]

URL = re.compile(r"""https?://[^\s"'<>)\\]+""")
LOADING_TAG = re.compile(
    r"<(script|link|img|iframe|source|embed)\b[^>]*>", re.IGNORECASE | re.DOTALL
)


# -- running asv --------------------------------------------------------------------------------


def asv(*args: str, nice: bool = True) -> subprocess.CompletedProcess:
    """Run ``asv ARGS`` in asv_bench (under ``nice -n 19`` when it measures)."""
    cmd = [str(BIN / "asv"), *args]
    if nice:
        cmd = ["nice", "-n", "19", *cmd]
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=HERE)


def commits(spec: str, n: int) -> list[str]:
    """``n`` commits of ``spec`` (git rev-list --first-parent, as asv reads a range), evenly
    spaced and always with both ends, so the kernels' own commit is the first point (asv's
    ``--steps`` drops the oldest end)."""
    hashes = subprocess.run(
        ["git", "rev-list", "--first-parent", spec],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if n >= len(hashes):
        return hashes
    if n == 1:
        return hashes[:1]
    return [hashes[round(i * (len(hashes) - 1) / (n - 1))] for i in range(n)]


def run(args: argparse.Namespace) -> list[str]:
    if not Path.home().joinpath(".asv-machine.json").is_file():
        asv("machine", "--yes", nice=False)
    hashes = commits(args.range, args.commits)
    if not hashes:
        sys.exit(f"no commits in {args.range}")
    hashfile = HERE / "env" / "history-commits.txt"
    hashfile.parent.mkdir(exist_ok=True)
    hashfile.write_text("\n".join(hashes) + "\n")
    bench = {"all": None, "core": CORE, "quick": QUICK}.get(args.bench, args.bench)
    cmd = ["run", f"HASHFILE:{hashfile}", "--show-stderr"]
    cmd += ["--quick"] if args.quick else FULL_ATTRIBUTES
    if bench:
        cmd += ["--bench", bench]
    if args.new_only:
        cmd.append("--skip-existing-commits")
    done = asv(*cmd)
    # asv exits 2 when a benchmark failed; the summary below says which and where
    if done.returncode not in (0, 2):
        sys.exit(f"asv run failed ({done.returncode})")
    return hashes


def summarize(hashes: list[str]) -> int:
    """Per commit: how many benchmark results were measured, skipped (NotImplementedError on a
    commit lacking what a benchmark needs) and failed. Returns the number of failures."""
    failures = 0
    by_commit: dict[str, list[Path]] = {}
    for path in (HERE / "results").glob("*/*.json"):
        if path.name != "machine.json":
            by_commit.setdefault(json.loads(path.read_text())["commit_hash"], []).append(path)
    print("\ncommit    measured skipped failed  (results in asv_bench/results)")
    for commit in hashes:
        measured = skipped = failed = 0
        failed_names = []
        for path in by_commit.get(commit, []):
            data = json.loads(path.read_text())
            columns = data["result_columns"]
            for name, row in data["results"].items():
                entry = dict(zip(columns, row, strict=False))
                values = entry["result"]
                values = values if isinstance(values, list) else [values]
                for value in values:
                    if value is None:
                        failed += 1
                        failed_names.append(name)
                    elif isinstance(value, float) and math.isnan(value):
                        skipped += 1
                    else:
                        measured += 1
        title = subprocess.run(
            ["git", "log", "-1", "--format=%ad %s", "--date=short", commit],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
        print(f"{commit[:8]}  {measured:8d} {skipped:7d} {failed:6d}  {title[:70]}")
        for name in sorted(set(failed_names)):
            print(f"          failed: {name}")
        failures += failed
    return failures


# -- self-contained pages -----------------------------------------------------------------------


def manifest() -> dict:
    return json.loads((VENDOR / "manifest.json").read_text())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_self_contained(html: Path) -> None:
    """Copy the vendored files into ``html/vendor``, point the pages' script and stylesheet
    references at them, and refuse to finish while any page still loads from off the machine."""
    man = manifest()
    for rel, digest in man["files"].items():
        src = VENDOR / rel
        if sha256(src) != digest:
            sys.exit(f"{src}: SHA-256 differs from vendor/manifest.json (re-run --refresh-vendor)")
        dst = html / "vendor" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    local = {url: "vendor/" + rel for url, rel in man["urls"].items()}
    rewritten, left = 0, []
    for page in sorted(html.rglob("*")):
        if page.suffix not in (".html", ".js", ".css") or "vendor" in page.relative_to(html).parts:
            continue
        text = page.read_text(encoding="utf-8")

        def relocal(match: re.Match) -> str:
            nonlocal rewritten
            tag = match.group(0)
            for url in URL.findall(tag):
                if url not in local:
                    continue
                rewritten += 1
                # the copy is checked above; SRI and CORS attributes would stop file:// loads
                tag = tag.replace(url, local[url])
                tag = re.sub(r'\s(integrity|crossorigin|referrerpolicy)="[^"]*"', "", tag)
            return tag

        new = LOADING_TAG.sub(relocal, text) if page.suffix == ".html" else text
        if new != text:
            page.write_text(new, encoding="utf-8")
        for tag in LOADING_TAG.finditer(new):
            left += [f"{page.name}: {u}" for u in URL.findall(tag.group(0))]
        if page.suffix in (".js", ".css"):
            # a script or stylesheet holding an address could fetch it (url(), $.ajax, ...)
            left += [f"{page.name}: {u}" for u in URL.findall(new)]
    print(f"html: {rewritten} references rewritten to {html / 'vendor'}")
    if left:
        sys.exit("pages still load from off the machine:\n  " + "\n  ".join(left))


def publish() -> Path:
    conf = json.loads((HERE / "asv.conf.json").read_text())
    html = HERE / conf["html_dir"]
    if asv("publish", nice=False).returncode != 0:
        sys.exit("asv publish failed")
    make_self_contained(html)
    return html


# -- the picture ---------------------------------------------------------------------------------

PLOTTED = (
    ("bench_cnn_step.CNNStep.track_images_per_s", "reference", "training step, batch 64"),
    ("bench_cnn_step.CNNInference.track_images_per_s", None, "inference, batch 1000"),
)


def results_by_commit(name: str) -> dict[str, dict[tuple, float]]:
    """commit -> {params: value} of benchmark ``name`` in asv_bench/results (skips, failures
    left out)."""
    import itertools

    out: dict[str, dict[tuple, float]] = {}
    for path in (HERE / "results").glob("*/*.json"):
        if path.name == "machine.json":
            continue
        data = json.loads(path.read_text())
        row = data["results"].get(name)
        if row is None:
            continue
        entry = dict(zip(data["result_columns"], row, strict=False))
        values = entry["result"] if isinstance(entry["result"], list) else [entry["result"]]
        combos = list(itertools.product(*entry["params"])) if entry["params"] else [()]
        for combo, value in zip(combos, values, strict=False):
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                combo = tuple(c.strip("'") for c in combo)
                out.setdefault(data["commit_hash"], {})[combo] = value
    return out


def plot(path: Path, note: str) -> None:
    """The reference CNN's training step and inference, images/s per commit, numba kernels
    and NumPy twins, beside the machine's float32 matmul ceiling measured in the same run (on
    a shared machine a dip there is the neighbours, not the commit), from asv's results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = subprocess.run(
        ["git", "rev-list", "--first-parent", "--reverse", "main"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    series = [results_by_commit(name) for name, _, _ in PLOTTED]
    ceiling = results_by_commit("bench_matmul.MatmulCeiling.track_sgemm_gflops")
    done = sorted({c for s in series for c in s if c in order}, key=order.index)
    if not done:
        sys.exit("no results of the CNN benchmarks to plot")
    labels = [
        subprocess.run(
            ["git", "log", "-1", "--format=%h %ad", "--date=format:%m-%d", c],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout.strip()
        for c in done
    ]  # fmt: skip
    fig, axes = plt.subplots(
        1, 3, figsize=(15, 4.6), sharex=True, gridspec_kw={"width_ratios": [1, 1, 0.7]}
    )
    for ax, (_, model, title), by_commit in zip(axes, PLOTTED, series, strict=False):
        for impl, style in (("numba", "o-"), ("numpy", "s--")):
            key = (impl, model) if model else (impl,)
            xs = [i for i, c in enumerate(done) if key in by_commit.get(c, {})]
            ys = [by_commit[done[i]][key] for i in xs]
            ax.plot(xs, ys, style, label="numba kernels" if impl == "numba" else "NumPy twins")
        ax.set_title(f"reference CNN {title}")
        ax.set_ylabel("images/s")
        ax.legend(loc="best")
    xs = [i for i, c in enumerate(done) if () in ceiling.get(c, {})]
    axes[2].plot(xs, [ceiling[done[i]][()] for i in xs], "^-", color="grey")
    axes[2].set_title("float32 matmul ceiling, same run")
    axes[2].set_ylabel("GFLOP/s")
    for ax in axes:
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        many = len(done) > 6  # one label per commit: slanted when they would overlap
        ax.set_xticks(range(len(done)), labels, fontsize=7 if many else 8,
                      rotation=55 if many else 0, ha="right" if many else "center")  # fmt: skip
    fig.suptitle(f"fastdl asv history, {len(done)} commits since the kernels landed ({note})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


# -- vendoring ----------------------------------------------------------------------------------


def _get(url: str) -> bytes:
    print(f"GET {url}", flush=True)
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def _sri(data: bytes, algorithm: str) -> str:
    return f"{algorithm}-" + base64.b64encode(hashlib.new(algorithm, data).digest()).decode()


def asv_integrity() -> dict[str, str]:
    """URL -> integrity attribute, from the index.html of the installed asv."""
    import asv as asv_package

    index = (Path(asv_package.__file__).parent / "www" / "index.html").read_text()
    return dict(re.findall(r'(?:src|href)="(https?://[^"]+)"[^>]*?integrity="([^"]+)"', index))


def refresh_vendor(mirror: str | None) -> None:
    """Download every package (npm tarball; stupidtable from its GitHub tag, or from the git
    directory ``mirror``) into asv_bench/vendor, and write manifest.json and README.md."""
    pinned = asv_integrity()
    man: dict = {"urls": {}, "files": {}, "packages": []}
    for pkg in PACKAGES:
        name, version = pkg["name"], pkg["version"]
        folder = f"{name}-{version}"
        wanted = [p for _, p in pkg["files"]] + pkg.get("extra", []) + pkg["licence"]
        if pkg["source"] == "npm":
            meta = json.loads(_get(f"https://registry.npmjs.org/{name}/{version}"))
            url = NPM.format(name=name, version=version)
            tgz = _get(url)
            integrity = meta["dist"]["integrity"]
            if _sri(tgz, integrity.split("-")[0]) != integrity:
                sys.exit(f"{url}: does not match the registry's integrity {integrity}")
            with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
                blobs = {p: tar.extractfile(f"package/{p}").read() for p in wanted}
            source = {"url": url, "integrity": integrity, "registry_licence": meta.get("license")}
        else:
            url = STUPIDTABLE.format(version=version, path="")
            if mirror:
                show = ["git", "--git-dir", mirror, "show"]
                blobs = {
                    p: subprocess.run(
                        [*show, f"{version}:{p}"], capture_output=True, check=True
                    ).stdout
                    for p in wanted
                }
                commit = subprocess.run(
                    [*show, "-s", "--format=%H", f"{version}^{{commit}}"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
            else:
                blobs = {p: _get(STUPIDTABLE.format(version=version, path=p)) for p in wanted}
                commit = None
            source = {"url": url, "git_tag": version, "commit": commit}
        out = VENDOR / folder
        shutil.rmtree(out, ignore_errors=True)
        for path, data in blobs.items():
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            (out / path).write_bytes(data)
            man["files"][f"{folder}/{path}"] = hashlib.sha256(data).hexdigest()
        loads = []
        for cdn, path in pkg["files"]:
            man["urls"][cdn] = f"{folder}/{path}"
            want = pinned.get(cdn)
            same = want is not None and _sri(blobs[path], want.split("-")[0]) == want
            loads.append({"cdn": cdn, "file": path, "same_bytes_as_asv_pins": same})
        man["packages"].append({"name": name, "version": version, "folder": folder, "source": source, "licence_files": pkg["licence"], "loads": loads})  # fmt: skip
    (VENDOR / "manifest.json").write_text(json.dumps(man, indent=1) + "\n")
    write_readme(man)


def write_readme(man: dict) -> None:
    lines = [
        "# Scripts and stylesheets of asv's published pages, vendored",
        "",
        "asv's `index.html` loads these from CDNs; `asv_bench/history.py` copies them into",
        "`asv_bench/html/vendor/` after `asv publish` and rewrites the references, so the",
        "published history works without network. Written by",
        "`python asv_bench/history.py --refresh-vendor` (do not edit by hand);",
        "`manifest.json` holds the SHA-256 of every file, checked at each copy.",
        "",
        "\"same bytes\": the file's hash equals the `integrity` (SRI) that asv's page pins for",
        "the CDN copy. cdnjs serves flot minified by cdnjs itself; the npm package holds the",
        "unminified sources, which are vendored instead. stupidtable 1.0.1 is not on npm (the",
        "package `stupid-table-plugin` has only 1.1.3): it comes from the plugin's git tag",
        "`1.0.1`, whose `stupidtable.min.js` has the bytes asv pins.",
        "",
        "| package | version | licence | source | file asv loads | SHA-256 | same bytes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for pkg in man["packages"]:
        src = pkg["source"]
        where = src["url"] + (f" (commit {src['commit']})" if src.get("commit") else "")
        lic = "MIT (" + ", ".join(pkg["licence_files"]) + ")"
        for load in pkg["loads"]:
            rel = f"{pkg['folder']}/{load['file']}"
            same = "yes" if load["same_bytes_as_asv_pins"] else "no"
            lines.append(
                f"| {pkg['name']} | {pkg['version']} | {lic} | {where} | `{rel}` | `{man['files'][rel]}` | {same} |"
            )
    lines += ["", "npm tarball integrity (sha512, as the registry gives it):", ""]
    for pkg in man["packages"]:
        if "integrity" in pkg["source"]:
            lines.append(f"- {pkg['name']} {pkg['version']}: `{pkg['source']['integrity']}`")
    lines.append("")
    (VENDOR / "README.md").write_text("\n".join(lines))


# -- command line -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="asv --quick (each benchmark once), 4 commits, fewer benchmarks",
    )
    parser.add_argument(
        "--range", default=DEFAULT_RANGE, help=f"commit range (default {DEFAULT_RANGE})"
    )
    parser.add_argument(
        "--commits",
        type=int,
        help="how many commits of the range (default 16, --quick 4)",
    )
    parser.add_argument(
        "--bench", help="regex of benchmark names, or core/quick/all (default core, --quick: quick)"
    )
    parser.add_argument(
        "--new-only", action="store_true", help="skip commits that already have results"
    )
    parser.add_argument(
        "--plot", type=Path, help="draw the CNN step and inference history into this PNG"
    )
    parser.add_argument("--publish-only", action="store_true", help="only asv publish and vendor")
    parser.add_argument(
        "--refresh-vendor", action="store_true", help="download the vendored files again (network)"
    )
    parser.add_argument(
        "--mirror", help="with --refresh-vendor: a git directory of Stupid-Table-Plugin"
    )
    args = parser.parse_args()  # fmt: skip
    if args.refresh_vendor:
        refresh_vendor(args.mirror)
        return
    args.commits = args.commits or (4 if args.quick else 16)
    args.bench = args.bench or ("quick" if args.quick else "core")
    start = time.monotonic()
    failures = 0
    if not args.publish_only:
        hashes = run(args)
        failures = summarize(hashes)
        print(f"asv run: {len(hashes)} commits in {time.monotonic() - start:.0f} s")
    html = publish()
    print(f"published: {html}")
    print(
        f"open: python -m http.server --bind 127.0.0.1 --directory {html} 8080, then http://127.0.0.1:8080"
    )
    if args.plot:
        plot(
            args.plot,
            "asv run --quick: one measure per benchmark and commit" if args.quick else "asv run",
        )
    print(f"total {time.monotonic() - start:.0f} s")
    if failures:
        sys.exit(f"{failures} benchmark results failed (see above)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
