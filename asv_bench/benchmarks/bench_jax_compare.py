"""The same training steps and inference in JAX, when ``jax`` is installed (skipped otherwise).

Each workload is a whole ``jax.jit``-compiled step (forward, loss, gradient by ``jax.grad``
and the optimizer update, written out below as the optimizers' formulas), so XLA may fuse
across all of it; compile time is spent in ``setup``. float32, random inputs from a fixed
seed, no dropout, images channels-last (``LAYOUT``, XLA's faster layout) — the workloads
of ``bench_cnn_step``, ``bench_torch_compare`` and ``bench_recurrent.CharLSTMStep``:

- ``JaxStep.track_images_per_s``: the reference CNN (Adadelta, batch 64) and the book's
  CNN (SGD momentum, batch 60), training images per second;
- ``JaxInference.track_images_per_s``: the reference CNN's forward on 1,000 images;
- ``JaxCharLSTMStep.track_tokens_per_s``: one-hot characters (V = 65) → LSTM(256) →
  Dense(65), Adam with the gradients clipped to global norm 5, tokens (N·T) per second.

Threads: XLA has no thread-count option, and its pools size themselves from the CPU
affinity mask, so :func:`_jax` narrows the mask to fastdl's thread count before it imports
jax (asv runs each benchmark in its own process). JAX is never a dependency of fastdl.
"""

import os

import numpy as np

from fastdl import config

from .common import per_second

VOCAB, HIDDEN = 65, 256


def _jax():
    """``(jax, jax.numpy)``, imported on ``fastdl.config.get_num_threads()`` CPUs."""
    if "jax" not in __import__("sys").modules:
        cpus = sorted(os.sched_getaffinity(0))[: config.get_num_threads()]
        os.sched_setaffinity(0, cpus)
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        raise NotImplementedError("jax is not installed") from None
    return jax, jnp


def _init(rng, *shape):
    """Uniform ±1/√fan_in weights (dense ``(out, in)``, convolution ``(KH, KW, C_in,
    C_out)``), the scale of PyTorch's default initialisation; a bias ``(n,)`` gets ±1/√n.
    Only the scale matters here: the benchmarks time steps, not training."""
    fan_in = {1: shape[0], 2: shape[-1], 4: int(np.prod(shape[:3]))}[len(shape)]
    bound = 1 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


#: Image layout of the JAX models: "NHWC" or "NCHW". Measured here in alternating rounds,
#: NHWC gave reference step / book step / inference 174–199 / 4,399–4,583 / 4,299–4,375
#: images/s against NCHW's 175–187 / 3,819–4,296 / 762–813.
LAYOUT = "NHWC"


def _images(n):
    """``n`` random images in ``LAYOUT``."""
    shape = (n, 28, 28, 1) if LAYOUT == "NHWC" else (n, 1, 28, 28)
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _conv(jax, x, w, b, pad):
    """``x`` in ``LAYOUT``, ``w`` (KH, KW, C_in, C_out)."""
    y = jax.lax.conv_general_dilated(x, w, (1, 1), pad, dimension_numbers=(LAYOUT, "HWIO", LAYOUT))
    return y + (b if LAYOUT == "NHWC" else b[:, None, None])


def reference_forward(jax, jnp, p, x):
    """conv 32@3×3 → ReLU → conv 64@3×3 → ReLU → max-pool 2 → Dense 128 ReLU → Dense 10."""
    h = jax.nn.relu(_conv(jax, x, p["w1"], p["b1"], "VALID"))
    h = jax.nn.relu(_conv(jax, h, p["w2"], p["b2"], "VALID"))
    window = (1, 2, 2, 1) if LAYOUT == "NHWC" else (1, 1, 2, 2)
    h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, window, window, "VALID")
    h = jax.nn.relu(h.reshape(len(x), -1) @ p["w3"] + p["b3"])
    return h @ p["w4"] + p["b4"]


def book_forward(jax, jnp, p, x):
    """conv 16@5×5 "same" → tanh → Dense 10 (chapter 5's CNN, its dropout left out)."""
    h = jnp.tanh(_conv(jax, x, p["w1"], p["b1"], ((2, 2), (2, 2))))
    return h.reshape(len(x), -1) @ p["w2"] + p["b2"]


def _params(model):
    rng = np.random.default_rng(0)
    if model == "reference":
        shapes = {"w1": (3, 3, 1, 32), "b1": (32,), "w2": (3, 3, 32, 64), "b2": (64,),
                  "w3": (128, 9216), "b3": (128,), "w4": (10, 128), "b4": (10,)}  # fmt: skip
    else:
        shapes = {"w1": (5, 5, 1, 16), "b1": (16,), "w2": (10, 16 * 28 * 28), "b2": (10,)}
    params = {k: _init(rng, *s) for k, s in shapes.items()}
    for k in params:  # dense weights (out, in) drawn as PyTorch does, used as (in, out)
        if params[k].ndim == 2:
            params[k] = np.ascontiguousarray(params[k].T)
    return params


def _cross_entropy(jax, jnp, logits, y):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def adadelta(jax, jnp, lr=1.0, rho=0.9, eps=1e-6):
    """``torch.optim.Adadelta``'s update (and fastdl's): ``(init, update)``."""

    def init(params):
        zeros = lambda: jax.tree_util.tree_map(jnp.zeros_like, params)  # noqa: E731
        return zeros(), zeros()  # two buffers each: the step donates its state

    def update(params, grads, state):
        s, u = state
        s = jax.tree_util.tree_map(lambda s, g: rho * s + (1 - rho) * g * g, s, grads)
        d = jax.tree_util.tree_map(lambda s, u, g: jnp.sqrt(u + eps) / jnp.sqrt(s + eps) * g,
                                   s, u, grads)  # fmt: skip
        u = jax.tree_util.tree_map(lambda u, d: rho * u + (1 - rho) * d * d, u, d)
        params = jax.tree_util.tree_map(lambda p, d: p - lr * d, params, d)
        return params, (s, u)

    return init, update


def sgd_momentum(jax, jnp, lr=0.1, momentum=0.9):
    """``v ← μ·v + g``, ``p ← p − lr·v`` (``torch.optim.SGD`` with momentum)."""

    def init(params):
        return jax.tree_util.tree_map(jnp.zeros_like, params)

    def update(params, grads, v):
        v = jax.tree_util.tree_map(lambda v, g: momentum * v + g, v, grads)
        return jax.tree_util.tree_map(lambda p, v: p - lr * v, params, v), v

    return init, update


def adam_clipped(jax, jnp, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, clip_norm=5.0):
    """Adam after scaling the gradients to global norm ≤ ``clip_norm`` (as
    ``torch.nn.utils.clip_grad_norm_`` then ``torch.optim.Adam``)."""

    def init(params):
        zeros = lambda: jax.tree_util.tree_map(jnp.zeros_like, params)  # noqa: E731
        return zeros(), zeros(), jnp.zeros((), jnp.float32)

    def update(params, grads, state):
        m, v, t = state
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree_util.tree_leaves(grads)))
        scale = jnp.minimum(1.0, clip_norm / (norm + 1e-6))
        grads = jax.tree_util.tree_map(lambda g: g * scale, grads)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        step = lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
        params = jax.tree_util.tree_map(lambda p, m, v: p - step * m / (jnp.sqrt(v) + eps),
                                        params, m, v)  # fmt: skip
        return params, (m, v, t)

    return init, update


def _compiled_step(jax, forward, optimizer, loss):
    """``step(params, state, x, y) -> (params, state, loss)``, one ``jax.jit`` of it all."""
    init, update = optimizer

    def step(params, state, x, y):
        value, grads = jax.value_and_grad(lambda p: loss(forward(p, x), y))(params)
        params, state = update(params, grads, state)
        return params, state, value

    return init, jax.jit(step, donate_argnums=(0, 1))


class JaxStep:
    params = ["reference", "book"]
    param_names = ["model"]
    timeout = 300

    def setup(self, model):
        jax, jnp = _jax()
        forward = reference_forward if model == "reference" else book_forward
        optimizer = adadelta(jax, jnp) if model == "reference" else sgd_momentum(jax, jnp)
        batch = 64 if model == "reference" else 60
        self.x = jnp.asarray(_images(batch))
        self.y = jnp.asarray(np.random.default_rng(1).integers(0, 10, batch).astype(np.int32))
        init, self.step = _compiled_step(
            jax,
            lambda p, x: forward(jax, jnp, p, x),
            optimizer,
            lambda logits, y: _cross_entropy(jax, jnp, logits, y),
        )
        self.params = jax.tree_util.tree_map(jnp.asarray, _params(model))
        self.state = init(self.params)
        self._step()

    def _step(self):
        self.params, self.state, loss = self.step(self.params, self.state, self.x, self.y)
        loss.block_until_ready()

    def time_train_step(self, model):
        self._step()

    def track_images_per_s(self, model):
        return per_second(self._step, len(self.x))

    track_images_per_s.unit = "images/s"


class JaxInference:
    timeout = 300

    def setup(self):
        jax, jnp = _jax()
        params = jax.tree_util.tree_map(jnp.asarray, _params("reference"))
        self.x = jnp.asarray(_images(1000))
        forward = jax.jit(lambda x: reference_forward(jax, jnp, params, x))
        self.forward = lambda: forward(self.x).block_until_ready()
        self.forward()

    def time_inference_1000(self):
        self.forward()

    def track_images_per_s(self):
        return per_second(self.forward, len(self.x))

    track_images_per_s.unit = "images/s"


def lstm_forward(jax, jnp, p, x):
    """``x`` (N, T, V) one-hot → LSTM(256), zero initial state, gates (i, f, g, o) → logits
    (N, T, V)."""

    def cell(carry, x_t):
        h, c = carry
        z = x_t @ p["wx"] + h @ p["wh"] + p["b"]
        i, f, g, o = jnp.split(z, 4, axis=1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    n = x.shape[0]
    zeros = jnp.zeros((n, HIDDEN), jnp.float32)
    _, hs = jax.lax.scan(cell, (zeros, zeros), jnp.swapaxes(x, 0, 1))  # (T, N, H)
    return jnp.swapaxes(hs, 0, 1) @ p["wo"] + p["bo"]


class JaxCharLSTMStep:
    params = ["T25-N32", "T64-N64"]
    param_names = ["shape"]
    timeout = 300

    def setup(self, shape):
        jax, jnp = _jax()
        t_len, n = (25, 32) if shape == "T25-N32" else (64, 64)
        rng = np.random.default_rng(0)
        ids = rng.integers(0, VOCAB, size=(n, t_len + 1))
        self.x = jnp.asarray(np.eye(VOCAB, dtype=np.float32)[ids[:, :-1]])
        self.y = jnp.asarray(ids[:, 1:].reshape(-1).astype(np.int32))
        bound = 1 / np.sqrt(HIDDEN)
        draw = lambda *s: rng.uniform(-bound, bound, s).astype(np.float32)  # noqa: E731
        params = {"wx": draw(VOCAB, 4 * HIDDEN), "wh": draw(HIDDEN, 4 * HIDDEN),
                  "b": draw(4 * HIDDEN), "wo": draw(HIDDEN, VOCAB), "bo": draw(VOCAB)}  # fmt: skip
        init, self.step = _compiled_step(
            jax,
            lambda p, x: lstm_forward(jax, jnp, p, x).reshape(-1, VOCAB),
            adam_clipped(jax, jnp),
            lambda logits, y: _cross_entropy(jax, jnp, logits, y),
        )
        self.params = jax.tree_util.tree_map(jnp.asarray, params)
        self.state = init(self.params)
        self.tokens = n * t_len
        self._step()

    def _step(self):
        self.params, self.state, loss = self.step(self.params, self.state, self.x, self.y)
        loss.block_until_ready()

    def time_step(self, shape):
        self._step()

    def track_tokens_per_s(self, shape):
        return per_second(self._step, self.tokens)

    track_tokens_per_s.unit = "tokens/s"
