"""The book's layers (``lincoln.layers``): ``Layer``, ``Dense`` and ``Conv2D``.

``Dense`` and ``Conv2D`` are fastdl's layers (same operations, same kernels) with the book's
signatures, defaults and initial weights:

- ``weight_init="standard"`` (``Dense``; ``Conv2D``'s default ``"normal"`` is the same):
  weights *and* biases drawn from N(0, 1);
- ``weight_init="glorot"``: the book's scale, ``2 / (fan_in + fan_out)`` used as the
  *standard deviation*, with ``fan_in``/``fan_out`` the input and output features of a
  dense layer and the input and output channels of a convolution (kernel size not counted).
  Glorot and Bengio's (2010) normal initialisation — fastdl's ``"glorot"`` — has
  ``2 / (fan_in + fan_out)`` as the *variance*, so its standard deviation is the square
  root of the book's; for MNIST's 784 → 89 the book draws with 0.0023, Glorot with 0.048.

Draws come from NumPy's global generator, exactly as the book makes them: ``Dense`` reseeds
it with the network's seed (``np.random.seed(self.seed)``) and draws its weights then its
biases with ``np.random.normal``; ``Conv2D`` does not reseed (nor does the book's), so its
weights depend on what was drawn before (``Trainer.fit`` seeds the generator and shuffles
first). Every ``fit(restart=True)`` sets the layers up again, so they start from the same
weights each time, as in the book.

Deliberate differences: ``Dense``'s bias is stored as ``(H,)`` (the book's ``(1, H)`` row;
the same numbers), so book networks save, load and convert like fastdl's; ``Conv2D`` keeps
the book's bias-free convolution and its ``(C_in, C_out, K, K)`` layout
(:class:`fastdl.book.conv.Conv2D_Op`); dropout is inverted (:mod:`fastdl.book.dropout`).

``Layer`` is the book's base class for writing your own (chapter 3): ``Layer(neurons)``,
``self.seed``, ``self.params`` and ``self.param_grads`` as lists, ``_setup_layer(input_)``
creating ``self.operations``.
"""

from __future__ import annotations

import numpy as np

from fastdl import layers as _fd
from fastdl._checks import positive_int
from fastdl.book.conv import Conv2D_Op
from fastdl.ops.activations import ReLU
from fastdl.ops.dense import BiasAdd, WeightMultiply
from fastdl.ops.dropout import Dropout

__all__ = ["Layer", "Dense", "Conv2D"]

#: The book's ``weight_init`` names: "standard" and "normal" are N(0, 1).
BOOK_INITS = ("standard", "normal", "glorot")


def book_scale(where: str, weight_init: str, fan_in: int, fan_out: int) -> float:
    """The book's standard deviation: ``2 / (fan_in + fan_out)`` for "glorot", else 1."""
    if weight_init not in BOOK_INITS:
        raise ValueError(f"{where}: weight_init must be one of {BOOK_INITS}, got {weight_init!r}")
    return 2.0 / (fan_in + fan_out) if weight_init == "glorot" else 1.0


class _Arrays(list):
    """A list of arrays that can also be called: the book reads ``layer.params`` as a list,
    fastdl calls ``layer.params()``; both work."""

    def __call__(self) -> list:
        return list(self)


class Layer(_fd.Layer):
    """The book's layer base class: subclass it and write ``_setup_layer(input_)``.

    Parameters
    ----------
    neurons : int
        The layer's width, for ``_setup_layer`` to use.

    Attributes
    ----------
    seed : int or None
        Set by the network (its ``seed``); a book-style ``_setup_layer`` calls
        ``np.random.seed(self.seed)`` before drawing.
    params, param_grads : list of ndarray
        The book's lists: what ``_setup_layer`` assigns to ``self.params`` (while it runs),
        then the parameters of ``self.operations`` and their gradients. Also callable, as
        fastdl's ``params()``.
    """

    seed: int | None = None

    def __init__(self, neurons: int) -> None:
        _fd.Layer.__init__(self)
        self.neurons = positive_int(type(self).__name__, "neurons", neurons)

    # The book's two lists. ``self.params`` assigned outside setup (in ``__init__``: given
    # weights) is kept for every setup; assigned inside ``_setup_layer`` (the book's
    # ``self.params = []`` then appends), it lives for that setup. Once set up, both lists
    # are read from the operations, the arrays the optimizer updates.
    @property
    def params(self) -> _Arrays:
        d = self.__dict__
        if d.get("_setting_up"):
            if d.get("_setup_params") is None:
                d["_setup_params"] = d.setdefault("_given_params", _Arrays())
            return d["_setup_params"]
        if self.operations:
            return _Arrays(p for op in self.operations for p in op.params())
        return d.setdefault("_given_params", _Arrays())

    @params.setter
    def params(self, value) -> None:
        key = "_setup_params" if self.__dict__.get("_setting_up") else "_given_params"
        self.__dict__[key] = _Arrays(value)

    @property
    def param_grads(self) -> _Arrays:
        return _Arrays(g for op in self.operations for g in op.param_grads())

    @param_grads.setter
    def param_grads(self, value) -> None:
        pass  # the book's _param_grads() rebuilds the list from the operations; so does this

    def _params(self) -> None:
        """The book's refresh of ``self.params`` (read from the operations here anyway)."""

    def _param_grads(self) -> None:
        """The book's refresh of ``self.param_grads`` (read from the operations here anyway)."""

    def _setup_layer(self, input_: np.ndarray) -> None:
        raise NotImplementedError(f"{self.name} must implement _setup_layer(input_)")

    def _setup(self, x: np.ndarray) -> None:
        self.__dict__["_setting_up"], self.__dict__["_setup_params"] = True, None
        try:
            super()._setup(x)
        finally:
            self.__dict__["_setting_up"] = False
        for op in self.operations:  # a Dropout(keep_prob) made in _setup_layer: the layer's rng
            if isinstance(op, Dropout) and op.rng is None:
                op.rng = self.rng


class Dense(Layer, _fd.Dense):
    """The book's fully connected layer: ``activation(x @ W + B)``, then dropout.

    Parameters
    ----------
    neurons : int
        Output features H.
    activation : Operation, default ``Linear()``
    conv_in : bool, default False
        Accepted and unused, as in the book.
    dropout : float, default 1.0
        Keep probability (1.0 = none); inverted dropout (see :mod:`fastdl.book.dropout`).
    weight_init : {"standard", "glorot"}, default "standard"
        The book's: see this module's docstring.

    Shape
    -----
    - Input ``(N, D)`` (or ``(N, T, D)``); output ``(N, H)``.
    - Parameters: ``W`` ``(D, H)``, ``B`` ``(H,)`` (the book's ``(1, H)`` draw).
    """

    def __init__(
        self, neurons: int, activation=None, conv_in: bool = False, dropout: float = 1.0,
        weight_init: str = "standard",
    ) -> None:  # fmt: skip
        _fd.Dense.__init__(self, neurons, activation, dropout, "standard")
        book_scale("Dense", weight_init, 1, 1)  # refuses an unknown name now
        self.weight_init = weight_init
        self.conv_in = bool(conv_in)

    def get_config(self) -> dict:
        return {**super().get_config(), "conv_in": self.conv_in}

    def _setup_layer(self, x: np.ndarray) -> None:
        d, h = x.shape[-1], self.neurons
        self.in_features = d
        scale = book_scale("Dense", self.weight_init, d, h)
        if self.seed is not None:
            np.random.seed(self.seed)
        w = np.random.normal(loc=0, scale=scale, size=(d, h)).astype(self.dtype, copy=False)
        b = np.random.normal(loc=0, scale=scale, size=(1, h)).astype(self.dtype, copy=False)
        self.operations = [WeightMultiply(w), BiasAdd(b.reshape(h)), self.activation]
        if self.dropout < 1.0:
            self.operations.append(Dropout(self.dropout, rng=self.rng))


class Conv2D(Layer, _fd.Conv2D):
    """The book's convolution layer: ``activation(conv(x, param))``, then flatten and dropout.

    Stride 1, ``K // 2`` zeros on each side, no bias, parameter ``(C_in, C_out, K, K)``, on
    fastdl's compiled convolution (:class:`fastdl.book.conv.Conv2D_Op`).

    Parameters
    ----------
    out_channels : int
    param_size : int
        K, the kernel's height and width.
    dropout : float, default 1.0
        Keep probability (inverted dropout).
    weight_init : {"normal", "standard", "glorot"}, default "normal"
    activation : Operation, default ``Linear()``
    flatten : bool, default False
        Flatten the output to ``(N, C_out·OH·OW)``.

    Shape
    -----
    - Input ``(N, C_in, H, W)``; output ``(N, C_out, OH, OW)`` (``OH = H`` for odd K).
    """

    def __init__(
        self, out_channels: int, param_size: int, dropout: float = 1.0,
        weight_init: str = "normal", activation=None, flatten: bool = False,
    ) -> None:  # fmt: skip
        k = positive_int("Conv2D", "param_size", param_size)
        _fd.Conv2D.__init__(
            self, out_channels, k, stride=1, padding=k // 2, activation=activation,
            dropout=dropout, weight_init="standard", flatten=flatten,
        )  # fmt: skip
        book_scale("Conv2D", weight_init, 1, 1)
        self.weight_init = weight_init

    def get_config(self) -> dict:
        config = super().get_config()
        return {"out_channels": self.out_channels, "param_size": self.param_size[0],
                **{k: config[k] for k in ("dropout", "weight_init", "activation", "flatten")}}  # fmt: skip

    def _setup_layer(self, x: np.ndarray) -> None:
        c_in, c_out, k = x.shape[1], self.out_channels, self.param_size[0]
        self.in_channels = c_in
        scale = book_scale("Conv2D", self.weight_init, c_in, c_out)
        param = np.random.normal(loc=0, scale=scale, size=(c_in, c_out, k, k))
        relu = type(self.activation) is ReLU
        conv = Conv2D_Op(param.astype(self.dtype, copy=False), relu=relu)
        self.operations = [conv, *self._after_convolution(relu)]
