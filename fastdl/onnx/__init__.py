"""Export fastdl networks to ONNX: ``fastdl.onnx.export(net, path, input_shape)``.

Needs the optional extra ``pip install 'fastdl[onnx]'`` (``onnx`` to write the model,
``onnxruntime`` to run it). ``import fastdl.onnx`` works without them; ``export`` raises an
ImportError that says what to install.

    >>> from fastdl.onnx import export                                   # doctest: +SKIP
    >>> export(net, "model.onnx", input_shape=(1, 28, 28))               # doctest: +SKIP

See :func:`fastdl.onnx.exporter.export` for what is exported and how (opset 17, IR version 8,
a dynamic batch axis, float32).
"""

from fastdl.onnx.exporter import IR_VERSION, OPSET, ExportError, export, require_onnx

__all__ = ["export", "ExportError", "require_onnx", "OPSET", "IR_VERSION"]
