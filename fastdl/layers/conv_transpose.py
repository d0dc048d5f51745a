"""Conv2DTranspose: a 2-D transposed convolution layer on NCHW images (PyTorch's
``ConvTranspose2d``), with bias, activation and dropout."""

from __future__ import annotations

import numpy as np

from fastdl._checks import check_activation, check_keep_prob, check_pair, positive_int
from fastdl.layers.base import Layer
from fastdl.layers.init import check_weight_init, init_weights
from fastdl.ops.conv_transpose import Conv2DTransposeOp, transposed_output_size
from fastdl.ops.dropout import Dropout

__all__ = ["Conv2DTranspose"]


def _compact(pair: tuple[int, int]) -> int | tuple[int, int]:
    """``(a, a)`` → ``a``; any other pair as it is."""
    return pair[0] if pair[0] == pair[1] else pair


class Conv2DTranspose(Layer):
    """2-D transposed convolution: ``y = activation(conv_transpose2d(x, W) + B)``, then dropout
    while training.

    Every input pixel adds a copy of the kernel, scaled by its value, onto the output, its
    copies ``stride`` pixels apart: with ``stride=2`` the image doubles in size, the upsampling
    step of a decoder or a generator. It is the transpose of ``Conv2D`` with the same kernel,
    stride and padding: that convolution maps the output's size back to the input's, and its
    input gradient is this layer's forward pass. The semantics are PyTorch's
    ``nn.ConvTranspose2d`` (``dilation=1``, ``groups=1``).

    Parameters
    ----------
    out_channels : int
        C_out, the number of filters.
    param_size : int or (int, int)
        Kernel size KH × KW (odd or even).
    stride : int, default 1
        S, the step between the kernel copies of neighbouring input pixels.
    padding : int or (int, int), default 0
        ``P`` (or ``(PH, PW)``): rows (columns) cropped from each side of the full output,
        as PyTorch's ``padding``; the convolution this layer is the transpose of pads its
        input with as many zeros. There is no ``"same"``.
    output_padding : int or (int, int), default 0
        Rows added at the bottom (columns at the right), each smaller than ``stride``: a
        stride-``S`` convolution maps ``S`` neighbouring sizes to one, and this picks which
        of them the output has (PyTorch's ``output_padding``). The added rows get the taps
        that fall there, else the bias alone.
    activation : Operation, default ``Identity()``
    dropout : float, default 1.0
        Keep probability, as in the book (1.0 = no dropout); inverted scaling while training.
    weight_init : {"glorot", "he", "standard"}, default "glorot"
        ``fan_in = C_out·KH·KW``, ``fan_out = C_in·KH·KW``: the fans of the convolution this
        is the transpose of, as PyTorch and Keras count them. Biases start at zero.

    Shape
    -----
    - Input: ``(N, C_in, H, W)``.
    - Output: ``(N, C_out, OH, OW)`` with ``OH = (H - 1)·S - 2·PH + KH + OPH`` and
      ``OW = (W - 1)·S - 2·PW + KW + OPW`` (OPH, OPW: the output padding).
    - Parameters: ``W`` ``(C_in, C_out, KH, KW)`` (PyTorch's ``ConvTranspose2d`` layout, so
      weights copy over as they are), ``B`` ``(C_out,)``.

    The output is an NCHW array stored channels-last (a transposed view), as ``Conv2D``'s;
    the next convolution reads it without a copy. A ``ReLU`` runs as its own pass (it is not
    fused into the kernel as in ``Conv2D``).

    Examples
    --------
    >>> import numpy as np, fastdl as fd
    >>> layer = fd.Conv2DTranspose(16, 4, stride=2, padding=1, activation=fd.ReLU())
    >>> layer.forward(np.ones((2, 32, 7, 7), dtype=np.float32)).shape
    (2, 16, 14, 14)
    >>> fd.Conv2DTranspose(1, 3, stride=2, padding=1, output_padding=1).forward(
    ...     np.ones((2, 16, 14, 14), dtype=np.float32)).shape
    (2, 1, 28, 28)
    """

    def __init__(
        self,
        out_channels: int,
        param_size,
        stride: int = 1,
        padding=0,
        output_padding=0,
        activation=None,
        dropout: float = 1.0,
        weight_init: str = "glorot",
    ) -> None:
        super().__init__()
        where = "Conv2DTranspose"
        self.out_channels = positive_int(where, "out_channels", out_channels)
        self.param_size = check_pair(where, "param_size", param_size, 1)
        self.stride = positive_int(where, "stride", stride)
        if isinstance(padding, str):
            raise ValueError(
                f"{where}: padding must be an int >= 0 or a pair of them (PyTorch's "
                f"ConvTranspose2d has no {padding!r}), got {padding!r}"
            )
        self.padding = check_pair(where, "padding", padding, 0)
        self.output_padding = check_pair(where, "output_padding", output_padding, 0)
        if max(self.output_padding) >= self.stride:
            raise ValueError(
                f"{where}: output_padding must be smaller than stride (each of its values "
                f"< {self.stride}), got output_padding {output_padding!r} with stride "
                f"{self.stride}"
            )
        self.dropout = check_keep_prob(where, "dropout", dropout)
        self.activation = check_activation(where, activation)
        self.weight_init = check_weight_init(where, weight_init)
        self.in_channels: int | None = None

    def get_config(self) -> dict:
        """The constructor's arguments; a padding the same along both axes as one int (so
        the defaults, 0, are left out of ``repr`` and summaries)."""
        return {"out_channels": self.out_channels, "param_size": self.param_size,
                "stride": self.stride, "padding": _compact(self.padding),
                "output_padding": _compact(self.output_padding), "activation": self.activation,
                "dropout": self.dropout, "weight_init": self.weight_init}  # fmt: skip

    def _pad(self) -> tuple[int, int, int, int]:
        ph, pw = self.padding
        return ph, ph, pw, pw

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """``(OH, OW)`` for an ``h × w`` input (may be < 1 for a large padding)."""
        kh, kw = self.param_size
        return transposed_output_size(h, w, kh, kw, self.stride, self._pad(), self.output_padding)

    def _check_input(self, x: np.ndarray) -> None:
        super()._check_input(x)
        if x.ndim != 4:
            raise ValueError(
                f"Conv2DTranspose: expected NCHW input (N, C_in, H, W), got shape {x.shape}"
            )
        if self.in_channels is not None and x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2DTranspose: expected {self.in_channels} input channels (axis 1), got "
                f"shape {x.shape} (weights {self.operations[0].W.shape})"
            )
        oh, ow = self.output_size(*x.shape[2:])
        if oh < 1 or ow < 1:
            raise ValueError(
                f"Conv2DTranspose: the output would be {oh}×{ow}, expected at least 1×1 "
                f"(input shape {x.shape}, kernel {self.param_size[0]}×{self.param_size[1]}, "
                f"stride {self.stride}, padding {self.padding!r}): lower the padding"
            )

    def _setup_layer(self, x: np.ndarray) -> None:
        c_in = x.shape[1]
        kh, kw = self.param_size
        self.in_channels = c_in
        shape = (c_in, self.out_channels, kh, kw)
        w = init_weights(
            self.rng,
            shape,
            self.out_channels * kh * kw,
            c_in * kh * kw,
            self.weight_init,
            self.dtype,
        )
        b = np.zeros(self.out_channels, dtype=self.dtype)
        op = Conv2DTransposeOp(w, b, self.stride, self._pad(), self.output_padding)
        self.operations = [op, self.activation]
        if self.dropout < 1.0:
            self.operations.append(Dropout(self.dropout, rng=self.rng))

    def reset(self) -> None:
        super().reset()
        self.in_channels = None
