"""BatchNorm1D and BatchNorm2D: batch normalisation of features and of image channels
(PyTorch's ``BatchNorm1d`` / ``BatchNorm2d``), with an activation."""

from __future__ import annotations

import numpy as np

from fastdl._checks import check_activation
from fastdl.layers.base import Layer
from fastdl.ops.activations import ReLU
from fastdl.ops.base import Operation
from fastdl.ops.batchnorm import BatchNormOp, values_per_channel

__all__ = ["BatchNorm1D", "BatchNorm2D"]


def _check_momentum(where: str, momentum) -> float | None:
    if momentum is None:
        return None
    if isinstance(momentum, Operation):
        raise TypeError(
            f"{where}: momentum must be a number in [0, 1] or None, got the activation "
            f"{momentum!r}; pass it by name: {where}(activation={momentum!r})"
        )
    if isinstance(momentum, (bool, np.bool_)) or not isinstance(momentum, (int, float, np.number)):
        raise TypeError(f"{where}: momentum must be a number in [0, 1] or None, got {momentum!r}")
    if not 0.0 <= float(momentum) <= 1.0:
        raise ValueError(f"{where}: momentum must be in [0, 1] (or None), got {momentum}")
    return float(momentum)


def _check_eps(where: str, eps) -> float:
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (int, float, np.number)):
        raise TypeError(f"{where}: eps must be a positive number, got {eps!r}")
    if not float(eps) > 0.0 or not np.isfinite(eps):
        raise ValueError(f"{where}: eps must be a positive number, got {eps}")
    return float(eps)


class _BatchNorm(Layer):
    """What the two layers share (see :class:`BatchNorm2D` for the semantics)."""

    _channel_axis = 1
    _shapes = "(N, C, H, W)"
    _one_value = "N·H·W = 1"

    def __init__(self, momentum: float | None = 0.1, eps: float = 1e-5, activation=None) -> None:
        super().__init__()
        self.momentum = _check_momentum(self.name, momentum)
        self.eps = _check_eps(self.name, eps)
        self.activation = check_activation(self.name, activation)
        self.num_features: int | None = None
        self.input_ndim: int | None = None

    def get_config(self) -> dict:
        return {"momentum": self.momentum, "eps": self.eps, "activation": self.activation}

    # -- the running statistics, by PyTorch's names ------------------------------------------

    def _buffer(self, i: int) -> np.ndarray | None:
        return self.operations[0].buffers()[i] if self.operations else None

    @property
    def running_mean(self) -> np.ndarray | None:
        """``(C,)``: the running mean, used at inference (None before setup)."""
        return self._buffer(0)

    @property
    def running_var(self) -> np.ndarray | None:
        """``(C,)``: the running (unbiased) variance, used at inference (None before setup)."""
        return self._buffer(1)

    @property
    def num_batches_tracked(self) -> int | None:
        """Training passes that updated the running statistics (None before setup)."""
        b = self._buffer(2)
        return None if b is None else int(b)

    # -- passes ------------------------------------------------------------------------------

    def _ndims_ok(self, ndim: int) -> bool:
        return ndim == 4

    def _check_input(self, x: np.ndarray) -> None:
        super()._check_input(x)
        if not self._ndims_ok(x.ndim):
            raise ValueError(f"{self.name}: expected input {self._shapes}, got shape {x.shape}")
        if self.input_ndim is not None and x.ndim != self.input_ndim:
            raise ValueError(
                f"{self.name}: set up for {self.input_ndim}-D input, got shape {x.shape} "
                "(one layer normalises one kind of input; use another layer for the other)"
            )
        c = x.shape[self._channel_axis]
        if self.num_features is not None and c != self.num_features:
            axis = "axis 1" if self._channel_axis == 1 else "the last axis"
            raise ValueError(
                f"{self.name}: expected {self.num_features} channels ({axis}), got shape {x.shape}"
            )

    def forward(self, x: np.ndarray, inference: bool = False) -> np.ndarray:
        """Normalise ``x``; training (``inference=False``) refuses one value per channel."""
        if not inference:
            self._check_input(x)
            if values_per_channel(x.shape, self._channel_axis) < 2:
                raise ValueError(
                    f"{self.name}: expected more than 1 value per channel when training (as "
                    f"PyTorch's BatchNorm), got input shape {x.shape} ({self._one_value}): "
                    "one value has no variance to normalise with; train on larger batches, "
                    "or use inference=True (net.predict) for the running statistics"
                )
        return super().forward(x, inference)

    def _setup_layer(self, x: np.ndarray) -> None:
        c = x.shape[self._channel_axis]
        self.num_features, self.input_ndim = c, x.ndim
        dt = self.dtype
        relu = type(self.activation) is ReLU
        op = BatchNormOp(
            np.ones(c, dt), np.zeros(c, dt), np.zeros(c, dt), np.ones(c, dt),
            np.zeros((), np.int64), self.momentum, self.eps, self._channel_axis, relu,
        )  # fmt: skip
        self.operations = [op] if relu else [op, self.activation]

    def reset(self) -> None:
        super().reset()
        self.num_features = self.input_ndim = None


class BatchNorm2D(_BatchNorm):
    """Batch normalisation of image channels: each channel normalised over N, H and W, then
    scaled and shifted, then the activation (PyTorch's ``nn.BatchNorm2d``, Ioffe & Szegedy
    2015)::

        y = activation(γ · (x − μ) / √(σ² + ε) + β)

    Training (``net.train_batch``, ``fit``) normalises each channel with the mean μ and the
    biased variance σ² (divided by N·H·W) of the batch, and moves the running statistics
    towards them; inference (``inference=True``: ``net.predict``, ``fit``'s evaluations,
    exports) normalises with the running statistics. Exactly PyTorch's semantics::

        running_mean = (1 − momentum) · running_mean + momentum · μ
        running_var  = (1 − momentum) · running_var  + momentum · σ² · M / (M − 1)

    the running variance unbiased (M = N·H·W values per channel), starting from 0 and 1.
    ``momentum=None`` makes them the cumulative average of every batch so far (PyTorch's
    ``momentum=None``). They are buffers, not parameters: the optimizer never updates them;
    ``fd.save``/``fd.load``, checkpoints (and ``resume``), ``get_weights``/``set_weights``,
    ``to_torch``/``from_torch``, ``save_weights`` and the ONNX export carry them.

    Training with one value per channel (a batch of one 1×1 image) raises ``ValueError``,
    as PyTorch does: its variance is 0/0 for the running estimate.

    Parameters
    ----------
    momentum : float in [0, 1] or None, default 0.1
        How far each training batch moves the running statistics (PyTorch's convention:
        the weight of the new batch, not Keras's weight of the old statistics, 0.99).
    eps : float, default 1e-5
        ε, added to the variance for numerical stability.
    activation : Operation, default ``Identity()``
        Applied after the normalisation (fastdl has no activation layers): ``Conv2D(32,
        3)`` then ``BatchNorm2D(activation=fd.ReLU())`` is the usual conv → BN → ReLU. A
        ``ReLU`` is fused into the normalisation (one pass over the output).

    Shape
    -----
    - Input: ``(N, C, H, W)``, N·H·W >= 2 when training.
    - Output: ``(N, C, H, W)``, in the input's memory layout (a convolution's channels-last
      output stays channels-last, so the next convolution or pooling reads it without a
      copy).
    - Parameters: ``gamma`` ``(C,)`` (ones), ``beta`` ``(C,)`` (zeros), PyTorch's ``weight``
      and ``bias``. Buffers: ``running_mean`` ``(C,)``, ``running_var`` ``(C,)``,
      ``num_batches_tracked`` (int64).

    Notes
    -----
    Over several processes (``Trainer(..., distributed=...)``) each process normalises its
    own rows of every batch with their own statistics, as PyTorch's ``BatchNorm`` under
    ``DistributedDataParallel`` without ``SyncBatchNorm``; process 0's running statistics
    are copied to the others after every step (as DDP's ``broadcast_buffers``), so every
    process evaluates and saves process 0's. Each process's share of a batch then needs
    more than one value per channel.

    A bias in the layer before (``Conv2D``'s, ``Dense``'s) is subtracted out again with the
    mean and only costs a few FLOPs; fastdl's layers always have one.

    Examples
    --------
    >>> import numpy as np, fastdl as fd
    >>> bn = fd.BatchNorm2D(activation=fd.ReLU())
    >>> y = bn.forward(np.random.default_rng(0).standard_normal((4, 3, 5, 5)))
    >>> y.shape, bool((y >= 0).all()), bn.num_batches_tracked
    ((4, 3, 5, 5), True, 1)
    >>> bn.running_var.shape
    (3,)
    """


class BatchNorm1D(_BatchNorm):
    """Batch normalisation of features: each feature (the last axis) normalised over the
    batch, and over the time steps of ``(N, T, D)`` sequences, then scaled and shifted, then
    the activation (PyTorch's ``nn.BatchNorm1d`` on ``(N, D)``)::

        y = activation(γ · (x − μ) / √(σ² + ε) + β)

    Everything else — training and inference statistics, momentum, the running estimates,
    saving, distributed training — is as for :class:`BatchNorm2D`.

    On a sequence ``(N, T, D)`` the statistics of feature ``d`` are taken over all N·T
    steps, as Keras's ``BatchNormalization()`` (features last, fastdl's sequence layout);
    PyTorch's ``BatchNorm1d`` takes ``(N, C, L)``, channels on axis 1, so ``to_torch`` wraps
    it in fastdl.interop.torch's ``SequenceBatchNorm1d`` (which transposes around it) and the
    ONNX export transposes around its BatchNormalization. A layer set up on 2-D input takes
    2-D input from then on (3-D likewise).

    Parameters
    ----------
    momentum : float in [0, 1] or None, default 0.1
    eps : float, default 1e-5
    activation : Operation, default ``Identity()``
        ``Dense(128)`` then ``BatchNorm1D(activation=fd.ReLU())`` is the usual
        dense → BN → ReLU; a ``ReLU`` is fused.

    Shape
    -----
    - Input: ``(N, D)``, N >= 2 when training; or ``(N, T, D)``, N·T >= 2 (``fit`` asks for
      batches of at least 2 rows either way: it checks before it knows T).
    - Output: the input's shape.
    - Parameters: ``gamma``, ``beta`` ``(D,)``. Buffers: ``running_mean``, ``running_var``
      ``(D,)``, ``num_batches_tracked``.

    Examples
    --------
    >>> import numpy as np, fastdl as fd
    >>> bn = fd.BatchNorm1D()
    >>> y = bn.forward(np.arange(8.0).reshape(4, 2))
    >>> np.round(y[:, 0], 4)  # (x − 3) / √(5 + 1e-5), the biased variance
    array([-1.3416, -0.4472,  0.4472,  1.3416])
    >>> np.round(bn.running_var, 4)  # 0.9 · 1 + 0.1 · 5 · 4/3, the unbiased variance
    array([1.5667, 1.5667])
    """

    _channel_axis = -1
    _shapes = "(N, D) or (N, T, D)"
    needs_two_rows = True
    _one_value = "a batch of 1"

    def _ndims_ok(self, ndim: int) -> bool:
        return ndim in (2, 3)
