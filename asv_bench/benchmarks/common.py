"""Helpers shared by the benchmark files: rates measured over a fixed stretch of wall time,
and stand-ins for the parts of fastdl an older commit lacks.

asv imports this suite from the current checkout and runs it against each commit's
installed fastdl (``asv_bench/history.py``), so every file must import on any commit since
the kernels landed: a module a commit lacks is imported with :func:`optional`, and
benchmarks that touch it are skipped (``NotImplementedError`` in ``setup``) instead of
failing.
"""

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

try:  # raised inside a benchmark (not its setup), asv records a skip, not a failure
    from asv_runner.benchmarks.mark import SkipNotImplemented
except ImportError:  # run outside asv (interleaved.py without asv installed)
    SkipNotImplemented = NotImplementedError

# config.BLAS_PATHS of the commits that have the BLAS paths (issue 17); the parameter list
# of the *BLAS benchmarks must not depend on the installed commit, or asv could not import
# this suite on older ones.
BLAS_PATHS = ("cblas", "scipy", "numpy", "loops")


class Missing:
    """Stands for a module an older commit of fastdl lacks: any use raises
    ``NotImplementedError``, which asv records as a skipped benchmark."""

    def __init__(self, name, error):
        self._why = f"{name} is not in this commit of fastdl ({error})"

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise NotImplementedError(self._why)

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(self._why)


def optional(name):
    """``importlib.import_module(name)``, or a :class:`Missing` stand-in when the installed
    commit has no such module."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        return Missing(name, error)


def require(module, *names):
    """``NotImplementedError`` (asv: skipped) unless ``module`` has every one of ``names``:
    for benchmarks of functions an older commit lacks or spelt differently."""
    lacking = [n for n in names if not hasattr(module, n)]
    if lacking:
        mod = getattr(module, "__name__", "fastdl")
        raise NotImplementedError(f"{mod} has no {', '.join(lacking)} in this commit")


def per_second(fn, items, seconds=2.0):
    """``items`` processed per second by repeated ``fn()`` calls, timed over at least ``seconds``
    (one untimed call first, so a lazy setup is never counted)."""
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return items * calls / (time.perf_counter() - start)


def rate(fn, flops, seconds=1.0):
    """GFLOP/s of ``fn()``, which does ``flops`` floating-point operations per call."""
    return per_second(fn, flops, seconds) / 1e9


def example_flops(net, x, training=True, one_hot=False):
    """FLOPs per call of ``net`` on the batch ``x`` — a training step's forward + backward, or
    a forward pass — from :func:`fastdl.summary.count` (2 per multiply-add of the matrix
    products, no input gradient in the first layer), so a rate cannot drift from the model
    it measures. Imported here, not at the top, so that the benchmark files still load for
    commits from before ``fastdl.summary``."""
    try:
        from fastdl.summary import count
    except ImportError:
        raise SkipNotImplemented("no fastdl.summary in this commit") from None

    counted = count(net, x.shape[1:], one_hot=one_hot)
    return len(x) * (counted.training_flops if training else counted.forward_flops)


PEAK_RUNNER = """
import gc, json, sys
sys.path.insert(0, {root!r})
{code}
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
step = build()  # a first model trains once: code loaded and kernels compiled, at full size
step()
del step
gc.collect()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM to the resident memory now
base = status("VmRSS")
step = build()
for _ in range(3):
    step()
print(json.dumps((status("VmHWM") - base) / 2**20))
"""


def _last_line(text, returncode):
    """The last line of a child's stderr, or its exit code when it printed nothing."""
    lines = text.strip().splitlines()
    return lines[-1] if lines else f"exited with code {returncode}"


def peak_step_mib(code):
    """Peak memory that a model's training takes in a fresh process, in MiB.

    ``code`` makes the full batch and defines ``build()``, which builds a model and its
    optimizer and returns ``step()``, one training step on the batch. A first model is built
    and trained once (so the library's code is loaded and its kernels compiled for exactly
    these calls) and dropped; then a second is built and trained three times. The result is
    the process's peak resident memory over those (Linux's ``VmHWM``, reset through
    ``/proc/self/clear_refs``) minus its resident memory before the second build: the
    weights, optimizer state, activations, gradients and workspace, without the framework's
    code. glibc is told to map every allocation above 128 KiB on its own and to return it on
    free (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``), so that the first model's
    freed arrays are not reused unseen. A subprocess, so nothing an earlier benchmark
    allocated is counted or reused.
    """
    if not Path("/proc/self/clear_refs").exists():
        raise NotImplementedError("peak memory is read from Linux's /proc")
    root = str(Path(__file__).resolve().parent.parent)
    script = PEAK_RUNNER.format(root=root, code=code)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(_last_line(done.stderr, done.returncode))
    return json.loads(done.stdout.strip().splitlines()[-1])
