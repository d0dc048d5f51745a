"""The book's optimizers (``lincoln.optimizers``): fastdl's, with the book's signatures.

``SGD(lr, final_lr=0, decay_type=None)``, ``SGDMomentum(lr, final_lr=0, decay_type=None,
momentum=0.9)``, ``AdaGrad(lr)`` and ``RegularizedSGD(lr, alpha)`` take their arguments in
the book's order. ``final_lr=0`` means "no decay", as in the book; a decay needs both
``final_lr > 0`` and ``decay_type`` (``"linear"`` or ``"exponential"``), spread over
``fit``'s epochs exactly as the book's ``_setup_decay`` spreads it.

``gradient_clipping=True`` clips every gradient element to ``[-2, 2]`` before the update, as
chapter 6's ``RNNOptimizer`` does (:mod:`fastdl.book.rnn` makes it the default there).

Differences from the book's code, on purpose:

- ``AdaGrad`` divides by ``√(Σg²) + 1e-7`` (PyTorch's and Keras's form); the book adds
  ``1e-7`` to the running sum at every step and divides by ``√(Σ(g² + 1e-7))``. Both only
  keep the division finite; the book's grows its ``eps`` with the step count.
- The book's ``AdaGrad(lr, final_lr_exp, final_lr_linear)`` passes its second and third
  arguments on as ``final_lr`` and ``decay_type``; here they are named so.
- Every ``fit`` starts from the constructor's ``lr`` (the book's decay carries over into the
  next ``fit`` of the same optimizer).
"""

from __future__ import annotations

import numpy as np

from fastdl import optimizers as _fd

__all__ = ["Optimizer", "SGD", "SGDMomentum", "AdaGrad", "RegularizedSGD"]


class Optimizer(_fd.Optimizer):
    """The book's optimizer base class, for writing your own as the book does.

    ``Optimizer(lr=0.01, final_lr=0, decay_type=None)``; a subclass gives either lincoln's
    ``_update_rule(**kwargs)`` (called for every parameter with ``param=`` and ``grad=``, the
    parameter to update in place and its gradient) or, as chapter 3's ``SGD``, its own
    ``step()`` looping over ``zip(self.net.params(), self.net.param_grads())``.
    """

    def __init__(
        self, lr: float = 0.01, final_lr: float = 0, decay_type: str | None = None
    ) -> None:
        super().__init__(lr, **_base_kwargs(type(self).__name__, final_lr, decay_type, False))
        self.first = True

    def _update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        self._update_rule(param=param, grad=grad)

    def _update_rule(self, **kwargs) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _update_rule or step")


#: The element-wise bound of chapter 6's gradient clipping.
CLIP_VALUE = 2.0


def _base_kwargs(where: str, final_lr, decay_type, gradient_clipping) -> dict:
    """fastdl's keyword arguments for the book's ``final_lr``, ``decay_type`` and
    ``gradient_clipping`` (the book's ``final_lr=0`` is fastdl's ``None``: no decay)."""
    if not isinstance(gradient_clipping, (bool, np.bool_)):
        raise TypeError(
            f"{where}: gradient_clipping must be True or False, got {gradient_clipping!r}"
        )
    if final_lr == 0 and decay_type is None:
        final_lr = None
    elif final_lr == 0 or (decay_type is None) != (final_lr is None):
        raise ValueError(
            f"{where}: a learning-rate decay needs final_lr > 0 and decay_type 'linear' or "
            f"'exponential' together (got final_lr={final_lr!r}, decay_type={decay_type!r})"
        )
    return {"final_lr": final_lr, "decay_type": decay_type,
            "clip_value": CLIP_VALUE if gradient_clipping else None}  # fmt: skip


def _book_config(optim) -> dict:
    """The book-signature arguments that rebuild ``optim`` (its constructor's names)."""
    return {"lr": optim.initial_lr, "final_lr": optim.final_lr or 0,
            "decay_type": optim.decay_type,
            "gradient_clipping": optim.clip_value is not None}  # fmt: skip


class SGD(_fd.SGD):
    """Plain gradient descent, ``p ← p − lr·g`` (:class:`fastdl.SGD`), the book's signature.

    Parameters
    ----------
    lr : float, default 0.01
    final_lr : float, default 0 (no decay)
    decay_type : {None, "linear", "exponential"}
    gradient_clipping : bool, default False
        Clip each gradient element to ``[-2, 2]`` first (chapter 6).
    """

    def __init__(
        self, lr: float = 0.01, final_lr: float = 0, decay_type: str | None = None,
        gradient_clipping: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(lr, **_base_kwargs("SGD", final_lr, decay_type, gradient_clipping))

    def get_config(self) -> dict:
        return _book_config(self)


class SGDMomentum(_fd.SGDMomentum):
    """``v ← μ·v + lr·g``; ``p ← p − v`` (:class:`fastdl.SGDMomentum`), the book's signature.

    Parameters
    ----------
    lr : float, default 0.01
    final_lr : float, default 0 (no decay)
    decay_type : {None, "linear", "exponential"}
    momentum : float, default 0.9
    gradient_clipping : bool, default False
    """

    def __init__(
        self, lr: float = 0.01, final_lr: float = 0, decay_type: str | None = None,
        momentum: float = 0.9, gradient_clipping: bool = False,
    ) -> None:  # fmt: skip
        kwargs = _base_kwargs("SGDMomentum", final_lr, decay_type, gradient_clipping)
        super().__init__(lr, momentum=momentum, **kwargs)

    def get_config(self) -> dict:
        return {**_book_config(self), "momentum": self.initial_momentum}


class AdaGrad(_fd.AdaGrad):
    """``s ← s + g²``; ``p ← p − lr·g / (√s + 1e-7)`` (:class:`fastdl.AdaGrad`).

    Parameters
    ----------
    lr : float, default 0.01
    final_lr : float, default 0 (no decay)
    decay_type : {None, "linear", "exponential"}
    gradient_clipping : bool, default False
    """

    def __init__(
        self, lr: float = 0.01, final_lr: float = 0, decay_type: str | None = None,
        gradient_clipping: bool = False,
    ) -> None:  # fmt: skip
        kwargs = _base_kwargs("AdaGrad", final_lr, decay_type, gradient_clipping)
        super().__init__(lr, eps=1e-7, **kwargs)

    def get_config(self) -> dict:
        return _book_config(self)


class RegularizedSGD(_fd.SGD):
    """The book's regularised SGD: ``p ← p − (lr·g + α·p)``.

    That is plain SGD with coupled weight decay ``α / lr`` (:class:`fastdl.SGD`'s
    ``weight_decay``): ``p − lr·(g + (α/lr)·p)``; it is written out here as the book writes it.

    Parameters
    ----------
    lr : float, default 0.01
    alpha : float, default 0.1
        Must be in ``[0, 1)``: the share of every weight taken off at each step.
    """

    def __init__(self, lr: float = 0.01, alpha: float = 0.1) -> None:
        super().__init__(lr)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha < 1:
            raise ValueError(f"RegularizedSGD: alpha must be a number in [0, 1), got {alpha!r}")
        self.alpha = float(alpha)

    def get_config(self) -> dict:
        return {"lr": self.initial_lr, "alpha": self.alpha}

    def _update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        step = self.lr * grad
        step += self.alpha * param
        param -= step
