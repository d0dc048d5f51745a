"""Speed table from the asv benchmark classes: interleaved rounds of separate processes.

The machine is shared, so a speed is only meaningful beside another measured at the same
time. Each round runs fastdl's CNN measures, then PyTorch's (when torch is installed), then
the character LSTM, each in a fresh process; the table gives the median and range per
measure. Run from the repository root::

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

FASTDL = """
from benchmarks import bench_cnn_step as b
out = {}
s = b.CNNStep(); s.setup("numba", "reference"); out["reference CNN step, batch 64 (images/s)"] = s.track_images_per_s("numba", "reference")
i = b.CNNInference(); i.setup("numba"); out["reference CNN inference, batch 1000 (images/s)"] = i.track_images_per_s("numba")
s = b.CNNStep(); s.setup("numba", "book"); out["book CNN step, batch 60 (images/s)"] = s.track_images_per_s("numba", "book")
s = b.CNNStep(); s.setup("numpy", "reference"); out["reference CNN step, pure NumPy (images/s)"] = s.track_images_per_s("numpy", "reference")
"""
TORCH = """
from benchmarks import bench_torch_compare as t
out = {}
s = t.TorchStep(); s.setup("reference"); out["PyTorch reference CNN step (images/s)"] = s.track_images_per_s("reference")
i = t.TorchInference(); i.setup(); out["PyTorch reference CNN inference (images/s)"] = i.track_images_per_s()
s = t.TorchStep(); s.setup("book"); out["PyTorch book CNN step (images/s)"] = s.track_images_per_s("book")
"""
LSTM = """
from benchmarks import bench_recurrent as r
out = {}
for impl, shape in (("numba", "T25-N32"), ("numba", "T64-N64"), ("numpy", "T25-N32")):
    s = r.CharLSTMStep(); s.setup(impl, shape)
    out[f"char LSTM step {shape}, {impl} (tokens/s)"] = s.track_tokens_per_s(impl, shape)
"""


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
        print(done.stderr.strip().splitlines()[-1], file=sys.stderr)
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--blas", action="store_true", help="compare the BLAS paths")
    args = parser.parse_args()
    runs: dict[str, list[float]] = {}
    codes = [BLAS.format(path=p) for p in BLAS_PATHS] if args.blas else (FASTDL, TORCH, LSTM)
    for r in range(args.rounds):
        for code in codes:
            for name, value in measure(code).items():
                runs.setdefault(name, []).append(value)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    for name, values in runs.items():
        print(
            f"{name:55s} {statistics.median(values):>9,.0f}  "
            f"({min(values):,.0f}–{max(values):,.0f}, {len(values)} runs)"
        )
    if args.blas:
        print_ratios(runs, args.rounds)


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
