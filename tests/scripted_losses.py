"""Losses that misbehave on cue, to drive the trainer's divergence handling."""

import fastdl as fd


class NaNOnCall(fd.SoftmaxCrossEntropy):
    """Softmax cross-entropy that reports NaN on its ``n``-th call (``fit`` refuses NaN data
    before training, so a NaN loss has to be made this way)."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def _output(self):
        self.calls += 1
        loss = super()._output()  # keeps what backward needs, as on every call
        return float("nan") if self.calls == self.n else loss
