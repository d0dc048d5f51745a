"""Graph: the ONNX nodes and initializers of an export, built with ``onnx.helper``.

The converters of :mod:`fastdl.onnx._convert` and :mod:`fastdl.onnx._recurrent` add nodes
through :meth:`Graph.node` and weights through :meth:`Graph.weight`; names are scoped by the
layer being converted (``layers.3.W``, node ``layers.3/MatMul``), so a tool such as Netron
shows which fastdl layer each node comes from.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["Graph"]


class Graph:
    """Nodes and initializers, in the order they are added.

    Parameters
    ----------
    dtype : numpy float dtype
        The dtype of the exported weights (float32: see :func:`fastdl.onnx.export`).
    """

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.scope = "graph"
        self._taken: set[str] = set()

    def _name(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``, ... if taken: every name in a graph is unique."""
        name, k = base, 0
        while name in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name)
        return name

    def reserve(self, name: str) -> str:
        """Mark ``name`` (a graph input) as taken; returns it."""
        self._taken.add(name)
        return name

    def weight(self, name: str, array: np.ndarray) -> str:
        """Add ``array`` as an initializer named ``<scope>.<name>``, in the export's float dtype
        (integer arrays keep theirs); returns its name."""
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating):
            array = array.astype(self.dtype)
        full = self._name(f"{self.scope}.{name}")
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), full))
        return full

    def axes(self, *axes: int) -> str:
        """An int64 initializer holding ``axes`` (Squeeze takes its axes as an input)."""
        return self.weight("axes", np.array(axes, dtype=np.int64))

    def node(self, op_type: str, inputs: list[str], n_outputs: int = 1, omit=(), **attrs):
        """Add one node; returns its output name (a list of names if ``n_outputs > 1``).

        ``inputs`` may hold ``""`` for an optional input left out, and the optional outputs
        at the positions in ``omit`` are left out too (named ``""``); the others are named
        ``<scope>/<op_type>`` (made unique).
        """
        base = f"{self.scope}/{op_type}"
        outputs = [
            "" if k in omit else self._name(base if k == 0 else f"{base}:{k}")
            for k in range(n_outputs)
        ]
        self.nodes.append(
            helper.make_node(op_type, inputs, outputs, name=self._name(base + ".node"), **attrs)
        )
        return outputs[0] if n_outputs == 1 else outputs

    def rename_output(self, current: str, name: str) -> str:
        """Make the tensor ``current`` be called ``name`` (the graph's output): the node that
        produces it is renamed, or, if it is a graph input, an Identity node copies it."""
        for node in reversed(self.nodes):
            for k, out in enumerate(node.output):
                if out == current:
                    node.output[k] = name
                    return name
        self.nodes.append(helper.make_node("Identity", [current], [name], name="output.node"))
        return name
