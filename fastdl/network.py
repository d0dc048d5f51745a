"""NeuralNetwork: a list of layers plus a loss, as in the book, with one seed and one dtype."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fastdl import config
from fastdl._checks import native, positive_int
from fastdl.kernels import _recycle as recycle
from fastdl.layers.base import Layer, carried_states, restore_states
from fastdl.layers.pool import (
    backward_through_pool,
    forward_through_pool,
    pooled_after,
    pools_in_one_pass,
)
from fastdl.losses import Loss
from fastdl.ops.base import Operation

__all__ = ["NeuralNetwork"]

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


#: A training step first frees the arrays of the last step's pass that are at least this
#: large, so that a step never holds two sets of them. numpy maps arrays of 4 MiB and more
#: with huge pages, so mapping them afresh costs little; smaller ones are kept until they
#: are replaced, as the allocator reuses their memory then (freed all at once, they would be
#: handed back to the system and mapped again page by page: the book CNN's step, whose
#: arrays are 3 MB, ran 0.66x as fast in alternating runs when everything was freed).
RELEASE_MIN_BYTES = 4 << 20


class NeuralNetwork:
    """Layers run in order, then a loss.

    Parameters
    ----------
    layers : sequence of Layer
    loss : Loss
    seed : int, optional
        Seeds the one ``numpy.random.Generator`` from which all of the network's randomness
        flows (initialisation, dropout). Same seed, same data, same thread count → bitwise
        identical weights. ``None`` draws fresh entropy.
    dtype : numpy float dtype, default float32
        Dtype of parameters, activations and gradients; float64 for gradient checks. Float
        input of another dtype is cast once here, at the network's boundary.

    Examples
    --------
    >>> import numpy as np, fastdl as fd
    >>> net = fd.NeuralNetwork([fd.Dense(8, fd.Tanh()), fd.Dense(1)], fd.MeanSquaredError(), seed=0)
    >>> x = np.ones((4, 3), dtype=np.float32); y = np.zeros((4, 1), dtype=np.float32)
    >>> loss = net.train_batch(x, y)
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        loss: Loss,
        seed: int | None = None,
        dtype: np.dtype | type = np.float32,
    ) -> None:
        layers = list(layers)
        if not layers:
            raise ValueError("NeuralNetwork: layers must not be empty")
        for i, layer in enumerate(layers):
            if isinstance(layer, Operation):
                raise TypeError(
                    f"NeuralNetwork: layers[{i}] is {layer!r}, an Operation, not a Layer: an "
                    "operation goes inside a layer, e.g. Dense(..., activation=fd.ReLU(), "
                    "dropout=0.8) or Conv2D(..., dropout=0.8) (dropout is the keep probability)"
                )
            if not isinstance(layer, Layer):
                raise TypeError(f"NeuralNetwork: layers[{i}] is {layer!r}, not a fastdl Layer")
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("NeuralNetwork: the same layer object appears twice in layers")
        if not isinstance(loss, Loss):
            raise TypeError(f"NeuralNetwork: loss must be a fastdl Loss, got {loss!r}")
        if np.dtype(dtype) not in _DTYPES:
            raise ValueError(
                f"NeuralNetwork: dtype must be float32 or float64, got {np.dtype(dtype)}"
            )
        self.layers = layers
        self.loss = loss
        self.seed = seed
        self.dtype = np.dtype(dtype)
        #: The shape of one example, ``x.shape[1:]``, from the first pass (or ``build``).
        self.input_shape: tuple[int, ...] | None = None
        #: ``"float"``, or ``"int"`` for token ids (an Embedding first).
        self.input_kind = "float"
        self._bind()

    def __repr__(self) -> str:
        """The layers one per line, then the loss, as PyTorch prints a ``Sequential``."""
        lines = [f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers)]
        lines.append(f"  loss: {self.loss!r}")
        return (
            f"NeuralNetwork(dtype={self.dtype.name}, seed={self.seed!r}\n"
            + "\n".join(lines)
            + "\n)"
        )

    def _bind(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        for layer in self.layers:
            layer.bind(self.rng, self.dtype)
        # The first layer's input is the data: nobody needs its gradient.
        self.layers[0].set_skip_input_grad(True)

    def reset(self) -> None:
        """Forget all parameters and reseed: the next pass initialises them as a new network."""
        for layer in self.layers:
            layer.reset()
        self._bind()

    def reset_state(self) -> None:
        """Clear the state that stateful layers carry from batch to batch."""
        for layer in self.layers:
            layer.reset_state()

    # -- passes -------------------------------------------------------------------------------

    def _prepare_input(self, x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray):
            raise TypeError(f"NeuralNetwork: expected a numpy array, got {type(x).__name__}")
        if x.ndim == 0 or x.shape[0] == 0 or x.size == 0:
            raise ValueError(f"NeuralNetwork: got an empty input of shape {x.shape}")
        x = native(x)
        if np.issubdtype(x.dtype, np.floating):
            if x.dtype.itemsize > self.dtype.itemsize:  # float64 data, float32 network
                self._check_fits(x)
            x = x.astype(self.dtype, copy=False)
        elif self.layers[0].float_input:
            raise TypeError(
                f"NeuralNetwork: {self.layers[0].name} expects floating-point input, got dtype "
                f"{x.dtype} (scale integer data to floats first, e.g. fastdl.datasets.scale_images)"
            )
        if self.input_shape is None:
            self.input_shape = tuple(int(d) for d in x.shape[1:])
            self.input_kind = "float" if np.issubdtype(x.dtype, np.floating) else "int"
        return x

    def _check_fits(self, x: np.ndarray) -> None:
        """Refuse ``x`` whose finite values overflow the network's dtype (they would turn into
        infinities, and training would report a divergence that blames the learning rate)."""
        biggest = float(np.max(np.abs(x), initial=0.0, where=np.isfinite(x)))
        limit = float(np.finfo(self.dtype).max)
        if biggest > limit:
            raise ValueError(
                f"NeuralNetwork: input value {biggest:.6g} does not fit the network's "
                f"{self.dtype.name} (largest {limit:.6g}); scale the data first, or build the "
                "network with dtype=np.float64"
            )

    def build(self, input_shape: tuple[int, ...], kind: str = "float") -> NeuralNetwork:
        """Set every layer up for examples of ``input_shape`` without data (as the first pass
        would), so ``set_weights`` and ``summary`` work on a new network; returns ``self``.

        Parameters
        ----------
        input_shape : tuple of int
            One example's shape, e.g. ``(1, 28, 28)`` for MNIST images (no batch axis).
        kind : {"float", "int"}
            ``"int"`` for token ids (a network that starts with ``Embedding``).

        Initial weights are drawn from the network's generator, as the first pass draws them.
        """
        shape = tuple(input_shape)
        if not shape or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
            raise ValueError(
                f"NeuralNetwork.build: input_shape must be positive ints (one example, no "
                f"batch axis), got {input_shape!r}"
            )
        if kind not in ("float", "int"):
            raise ValueError(f"NeuralNetwork.build: kind must be 'float' or 'int', got {kind!r}")
        if self.layers[0].first:
            dtype = self.dtype if kind == "float" else np.int64
            self.forward(np.zeros((1,) + shape, dtype=dtype), inference=True)
            self.reset_state()
        return self

    def save(self, path, optimizer=None) -> None:
        """Write this network (and ``optimizer``'s state) to ``path``; see :mod:`fastdl.saving`
        for the format. ``fd.load(path)`` reads it back."""
        from fastdl import saving

        saving.save(self, path, optimizer=optimizer)

    @staticmethod
    def load(path) -> NeuralNetwork:
        """Read a network written by :meth:`save` (the same as ``fd.load``)."""
        from fastdl import saving

        return saving.load(path)

    def save_weights(self, path) -> None:
        """Write the weights alone to the safetensors file ``path``, atomically, under
        PyTorch's key names and layouts (``0.weight``, ``0.bias``, ...) with the architecture
        in the file's metadata; see :mod:`fastdl.weights_file`.

        ``to_torch(net).load_state_dict(safetensors.torch.load_file(path))`` loads them into
        PyTorch as they are. The network must be set up (``build`` or a first batch). For the
        whole network with its optimizer, :meth:`save` (``.npz``) stays the default.
        """
        from fastdl import weights_file

        weights_file.save_weights(self, path)

    def load_weights(self, path) -> None:
        """Copy the weights of the safetensors file ``path`` (from :meth:`save_weights`, or
        ``safetensors.torch.save_file(to_torch(net).state_dict(), path)``) into this network.

        Checks the recorded architecture (if the file has one), then every key, shape and
        dtype, before any weight changes; raises :class:`~fastdl.saving.ModelFileError`
        naming the file, the key, and what was expected and given. A network not set up
        yet is built for the input shape the file records.
        """
        from fastdl import weights_file

        weights_file.load_weights(self, path)

    def forward(self, x: np.ndarray, inference: bool = False) -> np.ndarray:
        """Run every layer; ``inference=True`` turns dropout off and normalises batch-norm
        layers with their running statistics (training uses the batch's, and updates them).

        The last pass's arrays of :data:`RELEASE_MIN_BYTES` and more (the layers' inputs,
        outputs and gradients) are dropped first, as :meth:`train_batch` does, so two passes'
        are never held at once. An inference pass runs a ``Conv2D`` with ReLU and the
        ``MaxPool2D`` after it as one (:func:`fastdl.layers.pool.forward_through_pool`: the
        same outputs and layer attributes).

        Parameters
        ----------
        x : ndarray, shape (N, ...) as the first layer expects

        Returns
        -------
        ndarray, shape (N, ...) as the last layer gives
        """
        x = self._prepare_input(x)
        self._release_last_pass()
        layers = self.layers
        with config.compute():
            i = 0
            while i < len(layers):
                if inference and i + 1 < len(layers) and pools_in_one_pass(*layers[i : i + 2]):
                    # a convolution with ReLU and its max-pool in one pass (see layers.pool)
                    x = forward_through_pool(layers[i], layers[i + 1], x)
                    i += 2
                else:
                    x = layers[i].forward(x, inference)
                    i += 1
        if inference:  # no backward pass follows: the last pass's arrays not reused can go
            recycle.trim()
        return x

    def _release_last_pass(self) -> None:
        """Drop the last pass's large arrays (:data:`RELEASE_MIN_BYTES`) before a new pass
        makes its own, so the two are never held at once (and the very large ones, kept by
        :mod:`fastdl.kernels._recycle`, are free to be reused by this pass)."""
        for layer in self.layers:
            layer.release(min_bytes=RELEASE_MIN_BYTES)
        self.loss.release(min_bytes=RELEASE_MIN_BYTES)

    def backward(self, loss_grad: np.ndarray, after_layer=None) -> None:
        """Send ``loss_grad`` (d loss / d output) back through every layer.

        ``after_layer(layer)``, if given, is called as each layer's gradients are complete
        (the last layer first): data-parallel training starts summing a layer's gradients
        across processes there, while the layers before it are still differentiated.
        """
        grad = loss_grad
        layers = self.layers
        with config.compute():
            i = len(layers) - 1
            while i >= 0:
                if i > 0 and pooled_after(layers[i - 1], layers[i]):
                    # a convolution with ReLU and its max-pool, in one pass (the same
                    # gradients, without the dense one in between: see layers.pool)
                    grad = backward_through_pool(layers[i - 1], layers[i], grad)
                    done = layers[i - 1 : i + 1]
                else:
                    grad = layers[i].backward(grad)
                    done = layers[i : i + 1]
                i -= len(done)
                if after_layer is not None:
                    for layer in reversed(done):
                        after_layer(layer)
        recycle.trim()  # the last step's arrays that this one did not take again

    def train_batch(self, x: np.ndarray, y: np.ndarray, after_layer=None) -> float:
        """Forward, loss and backward on one batch; returns the loss. Parameters are unchanged
        (the optimizer's ``step()`` updates them from :meth:`param_grads`).

        Parameters
        ----------
        x : ndarray, shape (N, ...)
        y : ndarray, shape (N, ...) as the loss expects
        after_layer : callable, optional
            Passed to :meth:`backward`.
        """
        if not isinstance(y, np.ndarray):
            raise TypeError(
                f"NeuralNetwork.train_batch: y must be a numpy array, got {type(y).__name__}"
            )
        if isinstance(x, np.ndarray) and x.ndim > 0 and y.ndim > 0 and len(x) != len(y):
            raise ValueError(
                f"NeuralNetwork.train_batch: x has {len(x)} examples but y has {len(y)}"
            )
        self._release_last_pass()  # the last step's large activations and gradients
        state = self.rng.bit_generator.state
        fresh = [layer for layer in self.layers if layer.first]
        carried = carried_states(self.layers)
        try:
            prediction = self.forward(x, inference=False)
            loss = self.loss.forward(prediction, y)
        except (ValueError, TypeError):
            # A layer refused the input or the loss the labels: undo this pass's random draws
            # (initialisation, dropout) and the state it moved on (carried recurrent state,
            # batch norm's running statistics in the layers before the one that refused), so
            # a rejected call leaves what the network learnt and carries as it was (the
            # last step's large activations, freed before the pass, are not put back).
            self.rng.bit_generator.state = state
            restore_states(carried)
            for layer in fresh:
                layer.reset()
            raise
        self.backward(self.loss.backward(), after_layer)
        return loss

    def predict(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """The network's output in inference mode, computed ``batch_size`` examples at a time.

        For ``SoftmaxCrossEntropy`` this is the logits (take ``argmax(-1)`` for classes).
        A network with stateful layers continues from the state they carry, so it predicts
        at most ``batch_size`` examples per call: a second batch would start from the first
        batch's sequences.
        """
        batch_size = positive_int("NeuralNetwork.predict", "batch_size", batch_size)
        x = self._prepare_input(x)
        stateful = [layer.name for layer in self.layers if getattr(layer, "stateful", False)]
        if stateful and len(x) > batch_size:
            raise ValueError(
                f"NeuralNetwork.predict: {', '.join(stateful)} carry state from batch to batch, "
                f"so {len(x)} examples in batches of {batch_size} would start each batch from "
                "the previous batch's sequences; pass at most batch_size examples per call "
                "(reset_state() between unrelated calls)"
            )
        parts = [
            self.forward(x[i : i + batch_size], inference=True)
            for i in range(0, len(x), batch_size)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    # -- parameters ---------------------------------------------------------------------------

    def params(self) -> list[np.ndarray]:
        """Every learnable array, layer by layer (empty until the first forward pass)."""
        return [p for layer in self.layers for p in layer.params()]

    def param_grads(self) -> list[np.ndarray]:
        """Gradients of :meth:`params` from the last :meth:`train_batch`, in the same order."""
        return [g for layer in self.layers for g in layer.param_grads()]

    def buffers(self) -> list[np.ndarray]:
        """Every buffer, layer by layer: arrays the layers update themselves, not learnt
        (batch normalisation's running statistics; see :meth:`Layer.buffers
        <fastdl.layers.base.Layer.buffers>`). Empty for most networks."""
        return [b for layer in self.layers for b in layer.buffers()]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of :meth:`params`, then of :meth:`buffers` (as Keras's ``get_weights``
        includes the non-trainable weights): everything the network computes with, so that
        :meth:`set_weights` of it restores what it predicts (early stopping's best weights,
        a divergence's fallback, a checkpoint's)."""
        return [p.copy() for p in self.params()] + [b.copy() for b in self.buffers()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Copy ``weights`` into the parameters, in place: the arrays of :meth:`get_weights`
        (parameters then buffers), or the parameters alone (the buffers are then left as
        they are)."""
        params = self.params()
        buffers = self.buffers()
        if len(weights) not in (len(params), len(params) + len(buffers)):
            also = f" (or {len(params) + len(buffers)} with the buffers)" if buffers else ""
            raise ValueError(
                f"NeuralNetwork.set_weights: expected {len(params)} arrays{also}, "
                f"got {len(weights)}"
            )
        targets = params + buffers[: len(weights) - len(params)]
        for i, (p, w) in enumerate(zip(targets, weights, strict=True)):
            if not isinstance(w, np.ndarray):
                raise TypeError(
                    f"NeuralNetwork.set_weights: array {i} must be a numpy array, "
                    f"got {type(w).__name__}"
                )
            if p.shape != w.shape:
                raise ValueError(
                    f"NeuralNetwork.set_weights: array {i} has shape {w.shape}, expected {p.shape}"
                )
        for p, w in zip(targets, weights, strict=True):
            p[...] = w

    def summary(self, input_shape: tuple[int, ...], one_hot: bool = False) -> str:
        """Print and return a table of the layers: output shape, parameters and FLOPs per
        example, then the totals (parameters and their bytes, forward and training FLOPs).

        Builds a new network first (as :meth:`build`). The numbers, and what is counted
        (2 FLOPs per multiply-add of the matrix products; elementwise work not counted;
        no input gradient in the first layer), are :func:`fastdl.summary.count`'s.

        Parameters
        ----------
        input_shape : tuple of int
            One example's shape, no batch axis: e.g. ``(1, 28, 28)``, ``(T, D)``, or
            ``(T,)`` token ids for a network that starts with ``Embedding``. It must be the
            shape the network was built for, if it was.
        one_hot : bool, default False
            Count for exactly one-hot input rows (a recurrent first layer gathers them).

        Returns
        -------
        str
            The table, as printed.
        """
        from fastdl.summary import count

        text = count(self, input_shape, one_hot=one_hot).table()
        print(text)
        return text
