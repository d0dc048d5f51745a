"""Speed table from the asv benchmark classes: interleaved rounds of separate processes.

The machine is shared, so a speed is only meaningful beside another measured at the same
time. Each round runs, each in a fresh process, fastdl's CNN workloads, fastdl's character
LSTM, then the same workloads in PyTorch, JAX and ONNX Runtime (``bench_torch_compare``,
``bench_jax_compare``, ``bench_onnx_compare``; a framework that is not installed shows
"—"). It prints issue 15's table in Markdown: each framework's median over the rounds and
fastdl's ratio to the best peer, taken round by round, then fastdl's GFLOP/s against the
sgemm ceiling measured in the same processes. Run from the repository root::

    python asv_bench/interleaved.py --rounds 3

``--blas`` measures instead the reference CNN step and the LSTM step (T 25, batch 32) on each
BLAS path (``CNNStepBLAS``, ``CharLSTMStepBLAS``) and the NumPy twins, and gives each path's
ratio to the ``cblas`` path and to the pure NumPy path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The peers' table: one row per workload, one process per framework and round.
ROWS = (
    ("reference CNN training step, batch 64", "images/s"),
    ("reference CNN inference, batch 1000", "images/s"),
    ("book CNN training step, batch 60", "images/s"),
    ("LSTM-256 char step, T 25, batch 32", "tokens/s"),
    ("LSTM-256 char step, T 64, batch 64", "tokens/s"),
    ("reference CNN step, pure NumPy (FASTDL_PURE path)", "images/s"),
    ("peak memory of training the reference CNN, batch 64", "MiB"),
)
REF, INF, BOOK, T25, T64, PURE, MEM = (name for name, _ in ROWS)
PEERS = ("PyTorch", "JAX", "ONNX Runtime")

FASTDL_CNN = f"""
from benchmarks import bench_cnn_step as b, bench_matmul as m
from benchmarks.common import example_flops
out, flops = {{}}, {{}}
for model, name in (("reference", {REF!r}), ("book", {BOOK!r})):
    s = b.CNNStep(); s.setup("numba", model); out[name] = s.track_images_per_s("numba", model)
    flops[name] = example_flops(s.net, s.x) / len(s.x)
i = b.CNNInference(); i.setup("numba"); out[{INF!r}] = i.track_images_per_s("numba")
flops[{INF!r}] = example_flops(i.net, i.x, training=False) / len(i.x)
s = b.CNNStep(); s.setup("numpy", "reference"); out[{PURE!r}] = s.track_images_per_s("numpy", "reference")
out[{MEM!r}] = b.CNNStepMemory().track_step_peak_mib("numba")
out["sgemm ceiling"] = m.sgemm_ceiling()
out["flops"] = flops
"""
FASTDL_LSTM = f"""
from benchmarks import bench_recurrent as r
from benchmarks.common import example_flops
out, flops = {{}}, {{}}
for shape, name in (("T25-N32", {T25!r}), ("T64-N64", {T64!r})):
    s = r.CharLSTMStep(); s.setup("numba", shape); out[name] = s.track_tokens_per_s("numba", shape)
    flops[name] = example_flops(s.net, s.x, one_hot=True) / s.tokens
out["flops"] = flops
"""
TORCH = f"""
from benchmarks import bench_torch_compare as t
out = {{}}
for model, name in (("reference", {REF!r}), ("book", {BOOK!r})):
    s = t.TorchStep(); s.setup(model); out[name] = s.track_images_per_s(model)
i = t.TorchInference(); i.setup(); out[{INF!r}] = i.track_images_per_s()
for shape, name in (("T25-N32", {T25!r}), ("T64-N64", {T64!r})):
    s = t.TorchCharLSTMStep(); s.setup(shape); out[name] = s.track_tokens_per_s(shape)
m = t.TorchStepMemory(); m.setup(); out[{MEM!r}] = m.track_step_peak_mib()
"""
JAX = f"""
from benchmarks import bench_jax_compare as j
out = {{}}
for model, name in (("reference", {REF!r}), ("book", {BOOK!r})):
    s = j.JaxStep(); s.setup(model); out[name] = s.track_images_per_s(model)
i = j.JaxInference(); i.setup(); out[{INF!r}] = i.track_images_per_s()
for shape, name in (("T25-N32", {T25!r}), ("T64-N64", {T64!r})):
    s = j.JaxCharLSTMStep(); s.setup(shape); out[name] = s.track_tokens_per_s(shape)
"""
ORT = f"""
from benchmarks import bench_onnx_compare as o
i = o.OnnxRuntimeInference(); i.setup()
out = {{{INF!r}: i.track_images_per_s()}}
"""
FRAMEWORKS = (("fastdl", FASTDL_CNN), ("fastdl", FASTDL_LSTM), ("PyTorch", TORCH),
              ("JAX", JAX), ("ONNX Runtime", ORT))  # fmt: skip


BLAS = """
from benchmarks import bench_cnn_step as b, bench_recurrent as r
path = {path!r}
out = {{}}
if path == "pure":
    s = b.CNNStep(); s.setup("numpy", "reference"); out["CNN step " + path] = s.track_images_per_s("numpy", "reference")
    s = r.CharLSTMStep(); s.setup("numpy", "T25-N32"); out["LSTM step " + path] = s.track_tokens_per_s("numpy", "T25-N32")
else:
    s = b.CNNStepBLAS(); s.setup(path, "reference"); out["CNN step " + path] = s.track_images_per_s(path, "reference")
    s = r.CharLSTMStepBLAS(); s.setup(path, "T25-N32"); out["LSTM step " + path] = s.track_tokens_per_s(path, "T25-N32")
"""
BLAS_PATHS = ("cblas", "scipy", "numpy", "loops", "pure")


def measure(code: str) -> dict[str, float]:
    """Run ``code`` (which fills ``out``) in a fresh interpreter; {} if it cannot run."""
    script = f"import sys, json\nsys.path.insert(0, {str(HERE)!r})\n{code}\nprint(json.dumps(out))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        print(lines[-1] if lines else f"exited with code {done.returncode}", file=sys.stderr)
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--blas", action="store_true", help="compare the BLAS paths")
    parser.add_argument("--json", help="also write every round's measures to this file")
    args = parser.parse_args()
    if args.blas:
        runs: dict[str, list[float]] = {}
        for r in range(args.rounds):
            for code in (BLAS.format(path=p) for p in BLAS_PATHS):
                for name, value in measure(code).items():
                    runs.setdefault(name, []).append(value)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        for name, values in runs.items():
            print(
                f"{name:55s} {statistics.median(values):>9,.0f}  "
                f"({min(values):,.0f}–{max(values):,.0f}, {len(values)} runs)"
            )
        print_ratios(runs, args.rounds)
        return
    rounds = []
    for r in range(args.rounds):
        got: dict[str, dict] = {}
        for framework, code in FRAMEWORKS:
            out = measure(code)
            flops = {**got.get(framework, {}).get("flops", {}), **out.pop("flops", {})}
            got.setdefault(framework, {}).update(out, flops=flops)
        rounds.append(got)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(rounds, indent=1))
    print(peers_table(rounds))


def peers_table(rounds: list[dict]) -> str:
    """The issue-15 table in Markdown: each framework's median (and range) over the rounds,
    and fastdl's ratio to the best peer taken round by round (median and range; for memory:
    to PyTorch, lower is better),
    then fastdl's GFLOP/s against the sgemm ceiling measured in the same processes."""
    columns = ("fastdl", *PEERS)
    lines = [
        f"| workload | unit | {' | '.join(columns)} | fastdl / best peer |",
        "| --- | --- |" + " ---: |" * (len(columns) + 1),
    ]
    for name, unit in ROWS:
        cells = []
        for framework in columns:
            values = [r.get(framework, {}).get(name) for r in rounds]
            values = [v for v in values if v is not None]
            cells.append(
                f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"
                if values
                else "—"
            )
        ratios = []
        for r in rounds:
            mine = r.get("fastdl", {}).get(name)
            peers = [r[p][name] for p in PEERS if name in r.get(p, {})]
            if mine is not None and peers:
                ratios.append(mine / (min(peers) if unit == "MiB" else max(peers)))
        ratio = (
            f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"
            if ratios
            else "—"
        )
        lines.append(f"| {name} | {unit} | {' | '.join(cells)} | {ratio} |")
    ceilings = [
        r["fastdl"]["sgemm ceiling"] for r in rounds if "sgemm ceiling" in r.get("fastdl", {})
    ]
    if ceilings:
        ceiling = statistics.median(ceilings)
        lines.append(
            f"\nfastdl's rates against the sgemm ceiling, {ceiling:.0f} GFLOP/s in the same runs:"
        )
        for name, _unit in ROWS:
            per_item = [
                r["fastdl"]["flops"].get(name) for r in rounds if "flops" in r.get("fastdl", {})
            ]
            rates = [r["fastdl"][name] for r in rounds if name in r.get("fastdl", {})]
            if per_item and per_item[0] and rates:
                gflops = statistics.median(rates) * per_item[0] / 1e9
                lines.append(f"- {name}: {gflops:.1f} GFLOP/s ({100 * gflops / ceiling:.0f}%)")
    return "\n".join(lines)


def print_ratios(runs: dict[str, list[float]], rounds: int) -> None:
    """Each path's median ratio, round by round, to the cblas path and to the NumPy twins."""
    for workload in ("CNN step", "LSTM step"):
        for path in BLAS_PATHS[1:-1]:
            mine = runs.get(f"{workload} {path}", [])
            ratios = []
            for ref in ("cblas", "pure"):
                base = runs.get(f"{workload} {ref}", [])
                per_round = [m / b for m, b in zip(mine, base, strict=False)]
                ratios.append(f"{statistics.median(per_round):.2f}x {ref}" if per_round else "")
            print(f"{workload} {path:6s} " + ", ".join(ratios))


if __name__ == "__main__":
    main()
