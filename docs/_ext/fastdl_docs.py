"""Sphinx directives of fastdl's "How it works" pages: checks that run while the page is built.

``.. fastdl-gradcheck::``
    Its content is Python that builds ``obj`` (an Operation, Layer, Loss or NeuralNetwork),
    ``x`` and, for a loss or network, ``target``, from ``np``, ``fd`` and ``rng`` (a
    ``np.random.default_rng(0)``). The directive runs :func:`fastdl.testing.gradcheck` on it
    twice — on the NumPy twins (``fd.config.use_pure()``) and on the compiled kernels — and
    puts on the page the code, the call and a table of the measured errors per checked
    array. A gradient that fails the check fails the build (the check raises).

``.. fastdl-optimizer-check::``
    Its content builds ``optimizer`` and ``rule(param, grad, state, t)``, the update written
    on the page in NumPy; the directive takes a few steps of both on the same float64
    gradients, on the NumPy twins and on the compiled kernels, and prints the largest
    difference (and fails the build above ``1e-12``).

``.. fastdl-source:: fastdl.optimizers.Adam._update``
    The source of a function or method, read from the code at build time, followed by the
    NumPy twin of every paired kernel it calls (a name bound by ``fastdl.kernels._jit.pair``,
    whose ``.np`` is the twin), so the page shows the arithmetic wherever it lives.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
import time
from pathlib import Path

import numpy as np
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

CALL = "report = fastdl.testing.gradcheck(obj, x, target, eps=eps, atol=atol, rtol=rtol, {extra})"


def _namespace() -> dict:
    import fastdl as fd

    return {"np": np, "fd": fd, "rng": np.random.default_rng(0), "target": None}


def _code(text: str) -> nodes.literal_block:
    block = nodes.literal_block(text, text)
    block["language"] = "python"
    return block


def _table(header: list[str], rows: list[list[str]]) -> nodes.table:
    table = nodes.table(classes=["fastdl-measured"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    body = nodes.tbody()
    group += head
    group += body
    for cells, part in [(header, head)] + [(r, body) for r in rows]:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += nodes.paragraph(text=cell)
            row += entry
        part += row
    return table


def _arrays(obj, x) -> list[tuple[str, tuple]]:
    """``[("input", shape), ("param[0]", shape), ...]`` in gradcheck's order."""
    shapes = [("input", x.shape)]
    params = obj.params() if hasattr(obj, "params") else []
    shapes += [(f"param[{i}]", p.shape) for i, p in enumerate(params)]
    return shapes


class GradcheckDirective(SphinxDirective):
    has_content = True
    option_spec = {
        "eps": directives.unchanged,
        "atol": directives.unchanged,
        "rtol": directives.unchanged,
        "no-input": directives.flag,
        "inference": directives.flag,
    }

    def _run_once(self, code: str, pure: bool, settings: dict):
        import fastdl
        import fastdl.testing

        ns = _namespace()
        exec(compile(code, f"<{self.env.docname} gradcheck>", "exec"), ns)  # noqa: S102
        for name in ("obj", "x"):
            if name not in ns:
                raise self.error(f"fastdl-gradcheck: the code must define {name!r}")
        context = fastdl.config.use_pure(pure)
        start = time.perf_counter()
        with context:
            report = fastdl.testing.gradcheck(ns["obj"], ns["x"], ns["target"], **settings)
        seconds = time.perf_counter() - start
        return ns, report, seconds

    def run(self):
        code = "\n".join(self.content)
        settings = {
            "eps": float(self.options.get("eps", 1e-6)),
            "atol": float(self.options.get("atol", 1e-6)),
            "rtol": float(self.options.get("rtol", 1e-5)),
            "check_input": "no-input" not in self.options,
            "inference": "inference" in self.options,
        }
        extra = f"check_input={settings['check_input']}, inference={settings['inference']}"
        shown = (
            "import numpy as np\nimport fastdl as fd\nimport fastdl.testing\n"
            "rng = np.random.default_rng(0)\ntarget = None\n"
            f"eps, atol, rtol = {settings['eps']:g}, {settings['atol']:g}, {settings['rtol']:g}\n\n"
            f"{code}\n\n{CALL.format(extra=extra)}"
        )
        import fastdl

        paths = [("NumPy twins", True)]
        if not fastdl.config.PURE_AT_IMPORT:  # FASTDL_PURE=1: numba was never imported
            paths.append(("compiled kernels", False))
        runs = {label: self._run_once(code, pure, settings) for label, pure in paths}
        ns, pure_report, _ = runs["NumPy twins"]
        compiled_report = runs["compiled kernels"][1] if len(runs) == 2 else {}
        shapes = dict(_arrays(ns["obj"], np.asarray(ns["x"])))
        rows = []
        for key, err in pure_report.items():
            shape = shapes.get(key, ())
            rows.append(
                [
                    key,
                    f"{tuple(shape)}",
                    f"{err:.2e}",
                    f"{compiled_report.get(key, float('nan')):.2e}",
                ]
            )
        seconds = " and ".join(f"{runs[k][2]:.2f} s ({k})" for k in runs)
        intro = nodes.paragraph(
            text=(
                "Measured while this page was built: fastdl.testing.gradcheck compared the "
                "analytic gradients with float64 central differences (eps "
                f"{settings['eps']:g}); every element passed |analytic − numeric| ≤ "
                f"{settings['atol']:g} + {settings['rtol']:g}·|numeric|. The largest "
                f"difference per array, in {seconds}:"
            )
        )
        header = ["array", "shape", "max |diff|, NumPy twins", "max |diff|, compiled"]
        if not compiled_report:
            header[-1] += " (not run: FASTDL_PURE=1)"
        return [_code(shown), intro, _table(header, rows)]


class OptimizerCheckDirective(SphinxDirective):
    has_content = True
    option_spec = {"steps": directives.positive_int}

    def run(self):
        import fastdl

        code = "\n".join(self.content)
        steps = self.options.get("steps", 5)
        paths = [("NumPy twins", True)]
        if not fastdl.config.PURE_AT_IMPORT:  # FASTDL_PURE=1: numba was never imported
            paths.append(("compiled kernels", False))
        results = []
        for label, pure in paths:
            ns = _namespace()  # a fresh optimizer for each path
            exec(compile(code, f"<{self.env.docname} optimizer check>", "exec"), ns)  # noqa: S102
            for name in ("optimizer", "rule"):
                if name not in ns:
                    raise self.error(f"fastdl-optimizer-check: the code must define {name!r}")
            with fastdl.config.use_pure(pure):
                worst, moved = _optimizer_steps(ns["optimizer"], ns["rule"], steps)
            results.append((label, worst, moved))
        name = type(ns["optimizer"]).__name__
        for label, worst, moved in results:
            if not worst <= 1e-12:
                raise self.error(
                    f"fastdl-optimizer-check: the page's rule and {name} ({label}) differ by "
                    f"{worst:.3g} after {steps} steps"
                )
            if moved == 0.0:
                raise self.error(f"fastdl-optimizer-check: {label}: the parameter did not move")
        shown = (
            "import numpy as np\nimport fastdl as fd\n\n"
            f"{code}\n\n# then, {steps} times, the same random float64 gradient (3, 4) to both:\n"
            "#   optimizer.step()  and  rule(param, grad, state, t)"
        )
        measured = "; ".join(
            f"{label}: {worst:.2e} (largest single-step move {moved:.2e})"
            for label, worst, moved in results
        )
        text = (
            f"Measured while this page was built: after {steps} steps on the same random "
            f"float64 gradients, the largest difference between the parameter updated by "
            f"fastdl.{name} and the one updated by the rule above — {measured}."
        )
        return [_code(shown), nodes.paragraph(text=text)]


def _optimizer_steps(optimizer, rule, steps: int) -> tuple[float, float]:
    """``steps`` updates of one (3, 4) float64 parameter by ``optimizer`` and by ``rule``:
    the largest difference between the two, and the largest single-step move."""
    gen = np.random.default_rng(1)
    param = gen.standard_normal((3, 4))
    mine = param.copy()
    state: dict = {}
    worst = moved = 0.0
    net = _OneParameter(param)
    optimizer.bind(net)
    for t in range(1, steps + 1):
        grad = gen.standard_normal(param.shape)
        net.grad[...] = grad
        before = param.copy()
        optimizer.step()
        rule(mine, grad, state, t)
        worst = max(worst, float(np.abs(param - mine).max()))
        moved = max(moved, float(np.abs(param - before).max()))
    return worst, moved


def _resolve(path: str):
    """The object at a dotted path such as ``fastdl.optimizers.Adam._update``."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def _where(fn) -> str:
    file = Path(inspect.getsourcefile(fn)).resolve()
    root = Path(__file__).resolve().parents[2]
    return f"{file.relative_to(root)}, line {inspect.getsourcelines(fn)[1]}"


def _called_twins(fn) -> list:
    """NumPy twins of the paired kernels ``fn`` calls (``kernels.adam_update(...)`` → ``.np``)."""
    source = textwrap.dedent(inspect.getsource(fn))
    namespace = inspect.getmodule(fn).__dict__
    twins = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        chain, f = [], node.func
        while isinstance(f, ast.Attribute):
            chain.insert(0, f.attr)
            f = f.value
        if not isinstance(f, ast.Name) or f.id not in namespace:
            continue
        target = namespace[f.id]
        try:
            for attr in chain:
                target = getattr(target, attr)
        except AttributeError:
            continue
        twin = getattr(target, "np", None)
        if callable(twin) and twin not in twins:
            twins.append(twin)
    return twins


class SourceDirective(SphinxDirective):
    required_arguments = 1

    def _block(self, fn) -> list:
        fn = inspect.unwrap(fn)
        self.env.note_dependency(inspect.getsourcefile(fn))
        source = textwrap.dedent(inspect.getsource(fn)).rstrip()
        caption = nodes.paragraph()
        caption += nodes.emphasis(text=f"{fn.__qualname__} — {_where(fn)}")
        return [caption, _code(source)]

    def run(self):
        fn = inspect.unwrap(_resolve(self.arguments[0]))
        out = self._block(fn)
        for twin in _called_twins(fn):
            out += self._block(twin)
        return out


class _OneParameter:
    """The smallest thing an optimizer binds to: one parameter and its gradient."""

    def __init__(self, param: np.ndarray) -> None:
        self.param = param
        self.grad = np.zeros_like(param)

    def params(self):
        return [self.param]

    def param_grads(self):
        return [self.grad]


def setup(app):
    app.add_directive("fastdl-gradcheck", GradcheckDirective)
    app.add_directive("fastdl-optimizer-check", OptimizerCheckDirective)
    app.add_directive("fastdl-source", SourceDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
