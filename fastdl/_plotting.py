"""The shared steps of fastdl's ``plot`` methods: import pyplot (headless when writing a
file), take a figure, and write and close it."""

from __future__ import annotations

import os


def pyplot(where: str, path):
    """``matplotlib.pyplot``, with the Agg backend when the figure goes to ``path``; an
    ``ImportError`` naming ``where`` and the extra to install when matplotlib is missing."""
    try:
        if path is not None:
            import matplotlib

            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(f"{where} needs matplotlib: pip install 'fastdl[plot]'") from error
    return plt


def new_figure(plt, path, figsize=None):
    """The current figure, cleared, to draw on screen (``path`` None); else a new one."""
    if path is None:
        fig = plt.gcf()
        fig.clf()
        return fig
    return plt.figure(figsize=figsize)


def finish(plt, fig, path) -> None:
    """Write ``fig`` to ``path`` (120 dpi) and close it; nothing when ``path`` is None."""
    if path is not None:
        fig.savefig(os.fspath(path), dpi=120)
        plt.close(fig)
