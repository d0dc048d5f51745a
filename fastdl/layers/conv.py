"""Conv2D: a 2-D convolution layer on NCHW images, with bias, activation and dropout."""

from __future__ import annotations

import numpy as np

from fastdl._checks import check_activation, check_keep_prob, check_pair, positive_int
from fastdl.layers.base import Layer
from fastdl.layers.init import check_weight_init, init_weights
from fastdl.ops.activations import ReLU, Tanh
from fastdl.ops.conv import Conv2DOp, runs_channels_first, same_padding
from fastdl.ops.dropout import Dropout
from fastdl.ops.reshape import Flatten

__all__ = ["Conv2D"]


class Conv2D(Layer):
    """2-D convolution: ``y = activation(conv2d(x, W) + B)``, then dropout while training.

    Parameters
    ----------
    out_channels : int
        C_out, the number of filters.
    param_size : int or (int, int)
        Kernel size KH × KW (odd or even).
    stride : int, default 1
        S, the step between windows along both axes.
    padding : "same", "valid", int or (int, int), default "same"
        ``"same"`` pads so that ``OH = ceil(H / S)`` and ``OW = ceil(W / S)`` (TensorFlow's
        rule; for stride 1 the output has the input's size and an even kernel gets the extra
        row and column at the bottom and right, as PyTorch's ``padding="same"``). An int
        ``p`` (or a pair ``(ph, pw)``) adds that many zeros on each side; ``"valid"`` is 0.
        The book's convolution pads ``param_size // 2``, i.e. "same" for odd kernels.
    activation : Operation, default ``Linear()``
        A ``ReLU()`` is fused into the convolution (one pass over the output), and so is a
        ``Tanh()`` where the output is computed channels-first (``flatten=True``, below).
    dropout : float, default 1.0
        Keep probability, as in the book (1.0 = no dropout); inverted scaling while training.
    weight_init : {"glorot", "he", "standard"}, default "glorot"
        ``fan_in = C_in·KH·KW``, ``fan_out = C_out·KH·KW``. Biases start at zero.
    flatten : bool, default False
        Flatten the output to ``(N, C_out·OH·OW)`` (channel-major), as the book's layer does.

    Shape
    -----
    - Input: ``(N, C_in, H, W)``.
    - Output: ``(N, C_out, OH, OW)`` with ``OH = (H + PT + PB - KH) // S + 1`` and
      ``OW = (W + PL + PR - KW) // S + 1``; ``(N, C_out·OH·OW)`` with ``flatten=True``.
    - Parameters: ``W`` ``(C_out, C_in, KH, KW)`` (PyTorch's layout), ``B`` ``(C_out,)``.

    The output is an NCHW array stored channels-last (a transposed view); numpy treats it as
    any NCHW array, and the next convolution or pooling reads it without a copy. With
    ``flatten=True`` a stride-1 convolution of few input channels computes it C-contiguous
    (NCHW) instead, so that it flattens without a copy, and fuses a ``Tanh()`` activation
    into its passes as it fuses a ``ReLU()`` (the book's chapter-5 layer).

    Examples
    --------
    >>> import numpy as np, fastdl as fd
    >>> layer = fd.Conv2D(out_channels=8, param_size=3, activation=fd.ReLU())
    >>> layer.forward(np.ones((2, 1, 28, 28), dtype=np.float32)).shape
    (2, 8, 28, 28)
    """

    def __init__(
        self,
        out_channels: int,
        param_size,
        stride: int = 1,
        padding="same",
        activation=None,
        dropout: float = 1.0,
        weight_init: str = "glorot",
        flatten: bool = False,
    ) -> None:
        super().__init__()
        self.out_channels = positive_int("Conv2D", "out_channels", out_channels)
        self.param_size = check_pair("Conv2D", "param_size", param_size, 1)
        self.stride = positive_int("Conv2D", "stride", stride)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"Conv2D: padding must be 'same', 'valid' or an int, got {padding!r}"
                )
            self.padding = padding
        else:
            self.padding = check_pair("Conv2D", "padding", padding, 0)
        self.dropout = check_keep_prob("Conv2D", "dropout", dropout)
        self.activation = check_activation("Conv2D", activation)
        self.weight_init = check_weight_init("Conv2D", weight_init)
        self.flatten = bool(flatten)
        self.in_channels: int | None = None

    def get_config(self) -> dict:
        return {"out_channels": self.out_channels, "param_size": self.param_size,
                "stride": self.stride, "padding": self.padding, "activation": self.activation,
                "dropout": self.dropout, "weight_init": self.weight_init,
                "flatten": self.flatten}  # fmt: skip

    def _pad(self, h: int, w: int) -> tuple[int, int, int, int]:
        kh, kw = self.param_size
        if self.padding == "same":
            return same_padding(h, w, kh, kw, self.stride)
        ph, pw = (0, 0) if self.padding == "valid" else self.padding
        return ph, ph, pw, pw

    def _check_input(self, x: np.ndarray) -> None:
        super()._check_input(x)
        if x.ndim != 4:
            raise ValueError(f"Conv2D: expected NCHW input (N, C_in, H, W), got shape {x.shape}")
        if self.in_channels is not None and x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2D: expected {self.in_channels} input channels (axis 1), got shape "
                f"{x.shape} (weights {self.operations[0].W.shape})"
            )
        h, w = x.shape[2:]
        pt, pb, pl, pr = self._pad(h, w)
        kh, kw = self.param_size
        if kh > h + pt + pb or kw > w + pl + pr:
            raise ValueError(
                f"Conv2D: kernel {kh}×{kw} is larger than the padded input "
                f"{h + pt + pb}×{w + pl + pr} (input shape {x.shape}, padding {self.padding!r})"
            )
        if self.operations:  # "same" padding follows each input's H and W
            self.operations[0].pad = (pt, pb, pl, pr)

    def _setup_layer(self, x: np.ndarray) -> None:
        c_in = x.shape[1]
        kh, kw = self.param_size
        self.in_channels = c_in
        shape = (self.out_channels, c_in, kh, kw)
        w = init_weights(
            self.rng,
            shape,
            c_in * kh * kw,
            self.out_channels * kh * kw,
            self.weight_init,
            self.dtype,
        )
        b = np.zeros(self.out_channels, dtype=self.dtype)
        relu = type(self.activation) is ReLU
        tanh = (type(self.activation) is Tanh and self.flatten
                and runs_channels_first(self.stride, c_in))  # fmt: skip
        conv = Conv2DOp(w, b, self.stride, self._pad(*x.shape[2:]), relu=relu,
                        channels_first=self.flatten, tanh=tanh)  # fmt: skip
        self.operations = [conv, *self._after_convolution(relu or tanh)]

    def _after_convolution(self, fused: bool) -> list:
        """The operations after the convolution: the activation (unless it was fused into
        the convolution), dropout, flatten."""
        ops = [] if fused else [self.activation]
        if self.dropout < 1.0:
            ops.append(Dropout(self.dropout, rng=self.rng))
        if self.flatten:
            ops.append(Flatten())
        return ops

    def reset(self) -> None:
        super().reset()
        self.in_channels = None
