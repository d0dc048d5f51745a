"""Shape diagrams of the "How it works" pages, drawn by matplotlib while the site is built.

A page's ``.. plot::`` block runs the NumPy twins on a small example and hands the arrays
to :func:`flow`, so the concrete shapes on the picture are the ones the code produced; the
symbolic shapes beside them are the docstrings' notation.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

FORWARD = "#dbe9f6"
BACKWARD = "#fbe3d6"
PARAM = "#e4f2dc"


def _box(ax, x, y, name, symbolic, array, colour, width=1.9, height=0.9):
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.04,rounding_size=0.12",
            fc=colour,
            ec="#444",
            lw=1,
        )
    )
    shape = "×".join(str(s) for s in getattr(array, "shape", array)) or "scalar"
    ax.text(x, y + 0.2, name, ha="center", va="center", fontsize=10.5, weight="bold")
    ax.text(x, y - 0.05, symbolic, ha="center", va="center", fontsize=8.5, family="monospace")
    if shape != symbolic:  # a scalar says so once
        ax.text(x, y - 0.28, shape, ha="center", va="center", fontsize=8.5, color="#555")


def _arrow(ax, x0, x1, y, label, colour="#333", below=False):
    ax.add_patch(
        FancyArrowPatch((x0, y), (x1, y), arrowstyle="-|>", mutation_scale=13, lw=1.2, color=colour)
    )
    ax.text(
        (x0 + x1) / 2,
        y - 0.13 if below else y + 0.13,
        label,
        ha="center",
        va="top" if below else "bottom",
        fontsize=8.5,
        family="monospace",
    )


def flow(
    forward: Sequence[tuple[str, str, object]],
    ops: Sequence[str],
    backward: Sequence[tuple[str, str, object]] | None = None,
    back_ops: Sequence[str] | None = None,
    params: Sequence[tuple[int, str, str, object]] = (),
    title: str = "",
):
    """Draw arrays as boxes joined by operations: forward left to right, backward under it.

    Parameters
    ----------
    forward : sequence of (name, symbolic shape, array or shape)
        The arrays of the forward pass, in order.
    ops : sequence of str
        ``len(forward) - 1`` labels of the arrows between them.
    backward : sequence of (name, symbolic shape, array or shape), optional
        The gradients, one under each forward array (same length as ``forward``).
    back_ops : sequence of str, optional
        Labels of the backward arrows (right to left).
    params : sequence of (arrow index, name, symbolic shape, array or shape)
        Parameters drawn above the forward arrow they enter.
    title : str
    """
    n = len(forward)
    if len(ops) != n - 1:
        raise ValueError(f"flow: {n} arrays need {n - 1} operations, got {len(ops)}")
    step = 3.5
    rows = 2 if backward else 1
    top = 1.6 if params else 0.6
    fig, ax = plt.subplots(figsize=(max(6.0, 2.55 * n), 0.9 + 1.45 * rows + (1.0 if params else 0)))
    y_f = 0.0
    for k, (name, sym, arr) in enumerate(forward):
        _box(ax, k * step, y_f, name, sym, arr, FORWARD)
    entered = {k for k, *_ in params}  # a parameter comes in from above: label below
    for k, label in enumerate(ops):
        _arrow(ax, k * step + 0.98, (k + 1) * step - 0.98, y_f, label, below=k in entered)
    for k, name, sym, arr in params:
        x = k * step + step / 2
        _box(ax, x, y_f + 1.35, name, sym, arr, PARAM, width=1.7, height=0.8)
        ax.add_patch(
            FancyArrowPatch(
                (x, y_f + 0.93),
                (x, y_f + 0.12),
                arrowstyle="-|>",
                mutation_scale=11,
                lw=1,
                color="#5a8a4a",
            )
        )
    if backward:
        if len(backward) != n or back_ops is None or len(back_ops) != n - 1:
            raise ValueError("flow: backward needs one gradient per array and n - 1 operations")
        y_b = -1.6
        for k, (name, sym, arr) in enumerate(backward):
            _box(ax, k * step, y_b, name, sym, arr, BACKWARD)
        for k, label in enumerate(back_ops):
            _arrow(ax, (k + 1) * step - 0.98, k * step + 0.98, y_b, label, colour="#b0502a")
        ax.text(
            -1.15,
            y_b,
            "backward",
            rotation=90,
            ha="center",
            va="center",
            fontsize=9,
            color="#b0502a",
        )
    ax.text(-1.15, y_f, "forward", rotation=90, ha="center", va="center", fontsize=9)
    ax.set_xlim(-1.4, (n - 1) * step + 1.1)
    ax.set_ylim(-1.6 * (rows - 1) - 0.75, top + (0.5 if params else 0.1))
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig
