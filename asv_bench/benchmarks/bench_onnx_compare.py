"""The reference CNN's inference in ONNX Runtime, when ``onnx`` and ``onnxruntime`` are
installed (skipped otherwise).

The model is fastdl's own ``reference_cnn`` written by :func:`fastdl.onnx.export`, so both
runtimes compute the same graph on the same weights: conv 32@3×3 → ReLU → conv 64@3×3 →
ReLU → max-pool 2 → Dense 128 ReLU → Dense 10 on 1,000 random float32 images.
``OnnxRuntimeInference.track_images_per_s`` is read against
``bench_cnn_step.CNNInference``. Threads: ``intra_op_num_threads`` set to fastdl's count,
``inter_op_num_threads = 1``, every graph optimisation on. Neither package is a dependency
of fastdl.
"""

import os
import tempfile

import numpy as np

from fastdl import config

from .bench_cnn_step import reference_cnn
from .common import per_second


class OnnxRuntimeInference:
    timeout = 300

    def setup(self):
        try:
            import onnxruntime as ort

            from fastdl.onnx import export
        except ImportError:
            raise NotImplementedError("onnx, onnxruntime or fastdl.onnx is missing") from None
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "reference_cnn.onnx")
            export(reference_cnn(), path, (1, 28, 28))
            options = ort.SessionOptions()
            options.intra_op_num_threads = config.get_num_threads()
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).standard_normal((1000, 1, 28, 28)).astype(np.float32)
        self.feed = {"input": x}
        self._forward()

    def _forward(self):
        self.session.run(None, self.feed)

    def time_inference_1000(self):
        self._forward()

    def track_images_per_s(self):
        return per_second(self._forward, len(self.feed["input"]))

    track_images_per_s.unit = "images/s"
