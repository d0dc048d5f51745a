"""Optimizers: SGD, SGDMomentum, AdaGrad, RMSprop, Adam, AdamW, Adadelta.

As in the book, an optimizer is bound to a network (``Trainer(net, optim)`` does it, or
``optim.bind(net)``) and ``step()`` updates every parameter in place from the gradients of the
last ``train_batch``. All state (velocities, squared-gradient averages) is kept in the
parameters' dtype, so a float32 network stays float32.

Every optimizer takes:

- ``lr``: the learning rate; ``final_lr`` and ``decay_type`` (``"linear"`` or
  ``"exponential"``) decay it once per epoch from ``lr`` to ``final_lr`` over the epochs that
  ``Trainer.fit`` runs, as the book's ``Optimizer`` does. For other schedules (one-cycle,
  cosine, step, warm-up), per batch or per epoch, see :mod:`fastdl.schedules` and
  :class:`fastdl.callbacks.LRScheduler` (which refuses an optimizer with ``decay_type``);
- ``clip_value``: clip each gradient element to ``[-clip_value, clip_value]`` (the book clips
  its RNN gradients to [-2, 2]);
- ``clip_norm``: rescale all gradients together so their global L2 norm is at most
  ``clip_norm`` (as PyTorch's ``clip_grad_norm_``). Value clipping is applied first;
- ``weight_decay`` (default 0): L2 regularisation coupled to the gradient as in PyTorch's
  optimizers' ``weight_decay``: ``g ← g + weight_decay·p`` before the update, after
  clipping (as ``clip_grad_norm_`` before ``optimizer.step()``). ``AdamW`` decays
  decoupled instead (``p ← p − lr·weight_decay·p``, default 0.01, as ``torch.optim.AdamW``).
  Every parameter is decayed, biases included, as a torch optimizer given
  ``net.parameters()`` does;
- ``use_ema`` and ``ema_momentum`` (Keras's names and default 0.99): keep an exponential moving
  average of the weights, ``avg ← m·avg + (1 − m)·w`` after every step (the first step's
  weights start it), kept in the parameters' dtype. Training itself still follows the raw
  weights; ``Trainer.fit`` evaluates with the averages and ends on them (as Keras's ``fit``
  ends with ``finalize_variable_values()``). Without the Trainer, ``apply_ema()`` copies the
  averages into the network. Averaging the last hundred or so steps removes much of the noise
  that a constant learning rate leaves in the final weights.
"""

from __future__ import annotations

import abc
import math

import numpy as np

from fastdl.kernels import optim as kernels

__all__ = ["Optimizer", "SGD", "SGDMomentum", "AdaGrad", "RMSprop", "Adam", "AdamW", "Adadelta"]


def _positive(where: str, name: str, value: float | None, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{where}: {name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive finite number, got {value}")
    return float(value)


def _nonnegative(where: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{where}: {name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: {name} must be a finite number >= 0, got {value}")
    return float(value)


def _fraction(where: str, name: str, value: float) -> float:
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{where}: {name} must be in [0, 1), got {value}")
    return float(value)


class Optimizer(abc.ABC):
    """Base class: gradient clipping, learning-rate decay, and per-parameter state.

    Subclasses implement ``_update(i, param, grad)`` for parameter number ``i``.
    """

    def __init__(
        self,
        lr: float = 0.01,
        final_lr: float | None = None,
        decay_type: str | None = None,
        clip_value: float | None = None,
        clip_norm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        weight_decay: float = 0.0,
    ) -> None:
        where = type(self).__name__
        self.lr = self.initial_lr = _positive(where, "lr", lr)
        self.final_lr = _positive(where, "final_lr", final_lr, allow_none=True)
        if decay_type not in (None, "linear", "exponential"):
            raise ValueError(
                f"{where}: decay_type must be None, 'linear' or 'exponential', got {decay_type!r}"
            )
        if (decay_type is None) != (final_lr is None):
            raise ValueError(
                f"{where}: final_lr and decay_type go together (got {final_lr!r}, {decay_type!r})"
            )
        self.decay_type = decay_type
        self.clip_value = _positive(where, "clip_value", clip_value, allow_none=True)
        self.clip_norm = _positive(where, "clip_norm", clip_norm, allow_none=True)
        if not isinstance(use_ema, (bool, np.bool_)):
            raise TypeError(f"{where}: use_ema must be True or False, got {use_ema!r}")
        self.use_ema = bool(use_ema)
        self.ema_momentum = _fraction(where, "ema_momentum", ema_momentum)
        self.weight_decay = _nonnegative(where, "weight_decay", weight_decay)
        self.net = None
        self.state: dict[int, dict[str, np.ndarray]] = {}
        self._ema: list[np.ndarray] | None = None  # moving averages of the weights (use_ema)
        self.iterations = 0
        self._decay_per_epoch: float | None = None

    #: Constructor arguments of the subclass, beside the base class's (see :meth:`get_config`).
    _config_keys: tuple[str, ...] = ()
    #: Slots that are only scratch space (overwritten before they are read): not state.
    _scratch_slots: tuple[str, ...] = ("scratch", "delta")
    #: True where ``weight_decay`` is applied by ``_update`` itself (AdamW), not to the gradient.
    _decoupled_weight_decay: bool = False
    #: The hyper-parameter that a schedule may cycle as momentum (``"momentum"``, Adam's
    #: ``"beta1"``), or None. Its constructor value is kept as ``initial_momentum`` (reported
    #: by :meth:`get_config`, restored by :meth:`reset` and :meth:`setup_decay`), as
    #: ``initial_lr`` is kept beside ``lr``.
    momentum_name: str | None = None
    initial_momentum: float | None = None

    def bind(self, net) -> None:
        """Update the parameters of ``net`` (a NeuralNetwork) from now on.

        Binding another network forgets the state; binding the network already bound keeps it
        (so ``Trainer(net, optim)`` after ``fd.load_with_optimizer`` continues as saved).
        """
        if net is not self.net:
            self.net = net
            self.reset()

    def get_config(self) -> dict:
        """The constructor's arguments, by name (as Keras's ``get_config``)."""
        config = {
            "lr": self.initial_lr, "final_lr": self.final_lr, "decay_type": self.decay_type,
            "clip_value": self.clip_value, "clip_norm": self.clip_norm,
            "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
            "weight_decay": self.weight_decay,
        }  # fmt: skip
        config.update({k: getattr(self, k) for k in self._config_keys})
        if self.momentum_name is not None:
            config[self.momentum_name] = self.initial_momentum
        return config

    def state_dict(self) -> dict:
        """Everything that the next :meth:`step` depends on, as copies (PyTorch's name).

        Returns
        -------
        dict
            ``name`` (the class), ``config`` (:meth:`get_config`), ``iterations``, ``lr`` (the
            current, decayed rate), ``decay_per_epoch``, ``slots`` (``{i: {name: array}}``:
            velocities, moments, ... of parameter ``i``) and ``ema`` (the moving averages,
            or None).
        """
        return {
            "name": type(self).__name__,
            "config": self.get_config(),
            "iterations": self.iterations,
            "lr": self.lr,
            "decay_per_epoch": self._decay_per_epoch,
            "slots": {
                i: {k: v.copy() for k, v in s.items() if k not in self._scratch_slots}
                for i, s in self.state.items()
            },
            "ema": None if self._ema is None else [a.copy() for a in self._ema],
        }

    def load_state_dict(self, state: dict) -> None:
        """Put back a :meth:`state_dict` (of an optimizer of this class, for this network).

        Raises ``TypeError`` for another optimizer's state and ``ValueError`` for arrays that
        do not match the bound network's parameters; the optimizer is unchanged then.
        """
        where = f"{type(self).__name__}.load_state_dict"
        if state.get("name") != type(self).__name__:
            raise TypeError(f"{where}: the state is of a {state.get('name')}")
        params = self.net.params() if self.net is not None else None
        slots = {int(i): dict(s) for i, s in state["slots"].items()}
        ema = state["ema"]
        for i, s in slots.items():
            for k, v in s.items():
                if params is not None and (i >= len(params) or v.shape != params[i].shape
                                           or v.dtype != params[i].dtype):  # fmt: skip
                    raise ValueError(f"{where}: slot {k!r} of parameter {i} does not fit it")
        if ema is not None and params is not None:
            if [(a.shape, a.dtype) for a in ema] != [(p.shape, p.dtype) for p in params]:
                raise ValueError(f"{where}: the moving averages do not fit the parameters")
        self.iterations = int(state["iterations"])
        self.lr = float(state["lr"])
        dpe = state["decay_per_epoch"]
        self._decay_per_epoch = None if dpe is None else float(dpe)
        self.state = {i: {k: np.array(v) for k, v in s.items()} for i, s in slots.items()}
        self._ema = None if ema is None else [np.array(a) for a in ema]

    def reset(self) -> None:
        """Forget all state and restore the initial learning rate (and momentum)."""
        self.state = {}
        self._ema = None
        self.iterations = 0
        self._restore_initial()

    def _restore_initial(self) -> None:
        self.lr = self.initial_lr
        if self.momentum_name is not None:
            setattr(self, self.momentum_name, self.initial_momentum)

    # -- learning-rate decay (the book's _setup_decay / _decay_lr) --------------------------------

    def setup_decay(self, epochs: int) -> None:
        """Plan the per-epoch decay from ``lr`` to ``final_lr`` over ``epochs`` epochs.

        ``Trainer.fit`` calls it first, so every fit starts from the constructor's ``lr``
        (and momentum, which a schedule may have cycled).
        """
        self._restore_initial()
        if self.decay_type is None or epochs <= 1:
            self._decay_per_epoch = None
        elif self.decay_type == "linear":
            self._decay_per_epoch = (self.initial_lr - self.final_lr) / (epochs - 1)
        else:
            self._decay_per_epoch = (self.final_lr / self.initial_lr) ** (1.0 / (epochs - 1))

    def decay_lr(self) -> None:
        """Apply one epoch's decay (no effect without ``decay_type``)."""
        if self._decay_per_epoch is None:
            return
        if self.decay_type == "linear":
            self.lr -= self._decay_per_epoch
        else:
            self.lr *= self._decay_per_epoch

    # -- the update ---------------------------------------------------------------------------

    def _clipped(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        if self.clip_value is not None:
            grads = [np.clip(g, -self.clip_value, self.clip_value) for g in grads]
        if self.clip_norm is not None:
            # Squares summed in float64: a float32 sum overflows for norms above ~1.8e19.
            total = math.sqrt(
                sum(
                    float(np.einsum("i,i->", g.ravel(), g.ravel(), dtype=np.float64)) for g in grads
                )
            )
            if total > self.clip_norm:
                scale = self.clip_norm / (total + 1e-6)
                grads = [g * scale for g in grads]
        return grads

    def step(self) -> None:
        """Update every parameter of the bound network in place from its last gradients."""
        if self.net is None:
            raise RuntimeError(
                f"{type(self).__name__}.step: bind a network first (Trainer(net, optim))"
            )
        params, grads = self.net.params(), self.net.param_grads()
        if not params:
            raise RuntimeError(
                f"{type(self).__name__}.step: the network has no parameters yet (train a batch first)"
            )
        if any(g is None for g in grads):
            raise RuntimeError(
                f"{type(self).__name__}.step: no gradients yet (call net.train_batch first)"
            )
        grads = self._clipped(grads)
        self.iterations += 1
        coupled = self.weight_decay if not self._decoupled_weight_decay else 0.0
        for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
            if coupled:  # g + wd·p in a new array: the network's gradient stays as it was
                decayed = param * coupled
                decayed += grad
                grad = decayed
            self._update(i, param, grad)
        if self.use_ema:
            self._update_ema(params)

    # -- moving average of the weights (Keras's use_ema) ----------------------------------------

    def _update_ema(self, params: list[np.ndarray]) -> None:
        if self._ema is None:  # the first step since the average (re)started starts it
            self._ema = [param.copy() for param in params]
            return
        m = self.ema_momentum
        for avg, param in zip(self._ema, params, strict=True):
            avg -= param  # avg ← m·avg + (1 − m)·w, in place: (avg − w)·m + w
            avg *= m
            avg += param

    def ema_weights(self) -> list[np.ndarray]:
        """Copies of the moving averages, one per parameter (shapes as ``net.params()``)."""
        where = f"{type(self).__name__}.ema_weights"
        if not self.use_ema:
            raise RuntimeError(f"{where}: this optimizer was made with use_ema=False")
        if self._ema is None:
            raise RuntimeError(f"{where}: no step taken since the average (re)started")
        return [avg.copy() for avg in self._ema]

    def apply_ema(self) -> None:
        """Copy the moving averages into the bound network's parameters, in place.

        Keras's ``finalize_variable_values()``; ``Trainer.fit`` does it at the end of training.
        """
        if self.net is None:
            raise RuntimeError(
                f"{type(self).__name__}.apply_ema: bind a network first (Trainer(net, optim))"
            )
        self.net.set_weights(self.ema_weights())

    def restart_ema(self) -> None:
        """Forget the moving average: the next step starts a new one from the weights then.

        ``Trainer.fit`` calls it whenever it puts other weights into the network (the
        average at the end, the best weights, the weights before a divergence), so that a
        later ``fit(restart=False)`` does not blend in an average of weights it left behind.
        The other state (velocities, squared-gradient averages) is kept, as Keras keeps it.
        """
        self._ema = None

    def _slot(self, i: int, name: str, like: np.ndarray) -> np.ndarray:
        """State array ``name`` of parameter ``i``, created as zeros shaped like it."""
        slots = self.state.setdefault(i, {})
        if name not in slots:
            slots[name] = np.zeros_like(like)
        return slots[name]

    @abc.abstractmethod
    def _update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        """Update ``param`` (parameter number ``i``) in place from ``grad``."""


class SGD(Optimizer):
    """Plain gradient descent: ``p ← p − lr·g`` (``torch.optim.SGD`` without momentum).

    Parameters
    ----------
    lr : float, default 0.01
    weight_decay : float, default 0.0
        Coupled: ``g ← g + weight_decay·p`` first (torch's ``weight_decay``).
    final_lr, decay_type, clip_value, clip_norm, use_ema, ema_momentum : see :class:`Optimizer`
    """

    def _update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        param -= self.lr * grad


class SGDMomentum(Optimizer):
    """Gradient descent with momentum, in the book's form (the learning rate inside velocity).

    ``v ← μ·v + lr·g``; ``p ← p − v``. With ``nesterov=True``: ``p ← p − (μ·v + lr·g)``
    (the look-ahead step, Sutskever et al. 2013). At a constant ``lr`` these are the steps of
    ``torch.optim.SGD(lr, momentum=μ, nesterov=...)`` (which keeps ``v/lr``); when a
    schedule changes ``lr``, this form (Keras's too) applies each rate to the gradient of
    its own step, torch's to the whole velocity.

    Parameters
    ----------
    lr : float, default 0.01
    momentum : float, default 0.9
        A schedule may cycle it (:class:`fastdl.schedules.OneCycle`).
    nesterov : bool, default False
    weight_decay : float, default 0.0
        Coupled: ``g ← g + weight_decay·p`` first (torch's ``weight_decay``).
    final_lr, decay_type, clip_value, clip_norm, use_ema, ema_momentum : see :class:`Optimizer`
    """

    momentum_name = "momentum"

    def __init__(
        self, lr: float = 0.01, momentum: float = 0.9, nesterov: bool = False, **kwargs
    ) -> None:
        super().__init__(lr, **kwargs)
        self._config_keys = ("momentum", "nesterov")
        self.momentum = self.initial_momentum = _fraction("SGDMomentum", "momentum", momentum)
        self.nesterov = bool(nesterov)

    def _update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        v = self._slot(i, "velocity", param)
        kernels.sgd_momentum_update(param, grad, v, self.lr, self.momentum, self.nesterov)


class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al. 2011), as the book uses it for RNNs.

    ``s ← s + g²``; ``p ← p − lr·g / (√s + eps)``: ``torch.optim.Adagrad`` (with
    ``lr_decay=0``, ``initial_accumulator_value=0``; torch's ``eps`` default is 1e-10).

    Parameters
    ----------
    lr : float, default 0.01
    eps : float, default 1e-7
    weight_decay : float, default 0.0
        Coupled: ``g ← g + weight_decay·p`` first (torch's ``weight_decay``).
    final_lr, decay_type, clip_value, clip_norm, use_ema, ema_momentum : see :class:`Optimizer`
    """

    def __init__(self, lr: float = 0.01, eps: float = 1e-7, **kwargs) -> None:
        super().__init__(lr, **kwargs)
        self._config_keys = ("eps",)
        self.eps = _positive("AdaGrad", "eps", eps)

    def _update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        s = self._slot(i, "sum_sq", param)
        kernels.adagrad_update(param, grad, s, self.lr, self.eps)


class RMSprop(Optimizer):
    """RMSprop (Hinton 2012) with Keras's defaults.

    ``s ← ρ·s + (1−ρ)·g²``; ``p ← p − lr·g / (√s + eps)``: ``torch.optim.RMSprop`` with
    ``alpha=ρ`` (eps outside the root in both; torch's defaults are ``lr=0.01``,
    ``alpha=0.99``, ``eps=1e-8``).

    Parameters
    ----------
    lr : float, default 0.001
    rho : float, default 0.9
    eps : float, default 1e-7
    weight_decay : float, default 0.0
        Coupled: ``g ← g + weight_decay·p`` first (torch's ``weight_decay``).
    final_lr, decay_type, clip_value, clip_norm, use_ema, ema_momentum : see :class:`Optimizer`
    """

    def __init__(self, lr: float = 0.001, rho: float = 0.9, eps: float = 1e-7, **kwargs) -> None:
        super().__init__(lr, **kwargs)
        self._config_keys = ("rho", "eps")
        self.rho = _fraction("RMSprop", "rho", rho)
        self.eps = _positive("RMSprop", "eps", eps)

    def _update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        s = self._slot(i, "mean_sq", param)
        kernels.rmsprop_update(param, grad, s, self.lr, self.rho, self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, PyTorch's defaults.

    ``m ← β1·m + (1−β1)·g``; ``v ← β2·v + (1−β2)·g²``;
    ``p ← p − lr·m̂ / (√v̂ + eps)`` with ``m̂ = m/(1−β1ᵗ)``, ``v̂ = v/(1−β2ᵗ)``:
    ``torch.optim.Adam(lr, betas=(β1, β2), eps)``.

    Parameters
    ----------
    lr : float, default 0.001
    beta1 : float, default 0.9
        A schedule may cycle it (:class:`fastdl.schedules.OneCycle`), as torch's ``betas[0]``.
    beta2 : float, default 0.999
    eps : float, default 1e-8
    weight_decay : float, default 0.0
        ``Adam``: coupled, ``g ← g + weight_decay·p`` first (torch's ``Adam(weight_decay=)``,
        the L2 penalty that AdamW's authors show interacts badly with Adam's scaling).
        ``AdamW``: decoupled, default 0.01.
    final_lr, decay_type, clip_value, clip_norm, use_ema, ema_momentum : see :class:`Optimizer`
    """

    momentum_name = "beta1"

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        **kwargs,
    ) -> None:
        super().__init__(lr, **kwargs)
        self._config_keys = ("beta1", "beta2", "eps")
        self.beta1 = self.initial_momentum = _fraction(type(self).__name__, "beta1", beta1)
        self.beta2 = _fraction(type(self).__name__, "beta2", beta2)
        self.eps = _positive(type(self).__name__, "eps", eps)

    def _update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        m = self._slot(i, "m", param)
        v = self._slot(i, "v", param)
        # the bias corrections m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ), folded into two scalars
        t = self.iterations
        m_hat_scale = 1.0 / (1.0 - self.beta1**t)
        v_hat_scale = 1.0 / (1.0 - self.beta2**t)
        kernels.adam_update(param, grad, m, v, self.lr * m_hat_scale, self.beta1, self.beta2,
                            v_hat_scale, self.eps)  # fmt: skip


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), PyTorch's defaults.

    ``p ← p − lr·wd·p`` (with the current, possibly scheduled ``lr``) then the Adam step, as
    ``torch.optim.AdamW``. Decay applies to every parameter, biases included (as
    ``torch.optim.AdamW`` given all parameters). Parameters as :class:`Adam`'s, with
    ``weight_decay`` 0.01 by default.
    """

    _decoupled_weight_decay = True

    def __init__(self, lr: float = 0.001, weight_decay: float = 0.01, **kwargs) -> None:
        super().__init__(lr, weight_decay=weight_decay, **kwargs)

    def _update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        param *= 1.0 - self.lr * self.weight_decay
        super()._update(i, param, grad)


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012), PyTorch's form and defaults (lr 1.0 scales the step).

    ``s ← ρ·s + (1−ρ)·g²``; ``Δ = √(u + eps) / √(s + eps) · g``; ``u ← ρ·u + (1−ρ)·Δ²``;
    ``p ← p − lr·Δ``: ``torch.optim.Adadelta`` (eps inside both roots, as there).

    Parameters
    ----------
    lr : float, default 1.0
    rho : float, default 0.9
    eps : float, default 1e-6
    weight_decay : float, default 0.0
        Coupled: ``g ← g + weight_decay·p`` first (torch's ``weight_decay``).
    final_lr, decay_type, clip_value, clip_norm, use_ema, ema_momentum : see :class:`Optimizer`
    """

    def __init__(self, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, **kwargs) -> None:
        super().__init__(lr, **kwargs)
        self._config_keys = ("rho", "eps")
        self.rho = _fraction("Adadelta", "rho", rho)
        self.eps = _positive("Adadelta", "eps", eps)

    def _update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        s = self._slot(i, "mean_sq_grad", param)
        u = self._slot(i, "mean_sq_delta", param)
        kernels.adadelta_update(param, grad, s, u, self.lr, self.rho, self.eps)
