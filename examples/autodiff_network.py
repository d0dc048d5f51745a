"""Differentiate a small network with ``fastdl.autodiff`` and compare with the Layer gradients.

The network is a two-layer tanh MLP with a mean-squared-error loss, in float64:

    pred = tanh(x @ W1 + B1) @ W2 + B2,    loss = mean((pred - y)²)

``fastdl`` computes the gradients with the book's hand-written ``Operation.backward`` passes
(``net.train_batch``); ``fastdl.autodiff`` computes them by recording the same formula on
``Tensor`` objects and running ``backward()``. Two independent routes to the same numbers: the
script prints the largest difference per parameter and exits with status 1 if any exceeds
1e-8. (Here both routes happen to do the same floating-point operations in the same order, so
the difference is usually exactly 0.)

Run::

    python examples/autodiff_network.py            # N=64, D=10, H=32, 3 outputs
    python examples/autodiff_network.py --smoke    # smaller (the check is fast either way)
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import fastdl as fd
from fastdl.autodiff import Tensor

TOLERANCE = 1e-8
PARAM_NAMES = ("W1", "B1", "W2", "B2")


def layer_gradients(x: np.ndarray, y: np.ndarray, hidden: int, seed: int):
    """Loss, parameters and parameter gradients from ``fd.NeuralNetwork.train_batch``.

    Parameters
    ----------
    x : ndarray, shape (N, D), float64
    y : ndarray, shape (N, O), float64
    hidden : int
        H, the width of the tanh layer.
    seed : int
        The network's seed (initial weights).

    Returns
    -------
    loss : float
    params : list of ndarray, shapes [(D, H), (H,), (H, O), (O,)]
    grads : list of ndarray, same shapes
    """
    net = fd.NeuralNetwork(
        layers=[
            fd.Dense(neurons=hidden, activation=fd.Tanh()),
            fd.Dense(neurons=y.shape[1], activation=fd.Linear()),
        ],
        loss=fd.MeanSquaredError(),
        seed=seed,
        dtype=np.float64,
    )
    loss = net.train_batch(x, y)  # forward, loss, backward; no parameter update
    params = [p.copy() for p in net.params()]
    grads = [g.copy() for g in net.param_grads()]
    return float(loss), params, grads


def autodiff_gradients(x: np.ndarray, y: np.ndarray, params: list[np.ndarray]):
    """Loss and parameter gradients of the same network, from ``fastdl.autodiff``.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    y : ndarray, shape (N, O)
    params : list of ndarray, shapes [(D, H), (H,), (H, O), (O,)]

    Returns
    -------
    loss : float
    grads : list of ndarray, shapes as ``params``
    """
    W1, B1, W2, B2 = (Tensor(p) for p in params)
    pred = (x @ W1 + B1).tanh() @ W2 + B2
    loss = ((pred - y) ** 2).mean()
    loss.backward()
    return float(loss.value), [W1.grad, B1.grad, W2.grad, B2.grad]


def compare(n: int = 64, d: int = 10, hidden: int = 32, out: int = 3, seed: int = 0) -> dict:
    """Run both routes on random data and report the largest differences.

    Returns
    -------
    dict
        ``"loss"``: the Layer-based loss; ``"loss_diff"``: |difference of the two losses|;
        ``"grad_diff"``: {parameter name: max |difference|}; ``"max_diff"``: the largest of all;
        ``"grad_size"``: {parameter name: max |Layer gradient|}, the scale of the differences.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = rng.standard_normal((n, out))
    loss, params, layer_grads = layer_gradients(x, y, hidden, seed)
    ad_loss, ad_grads = autodiff_gradients(x, y, params)
    grad_diff, grad_size = {}, {}
    for name, p, g_layer, g_ad in zip(PARAM_NAMES, params, layer_grads, ad_grads, strict=True):
        if g_layer.shape != p.shape or g_ad.shape != p.shape:
            raise AssertionError(
                f"{name}: parameter {p.shape}, Layer gradient {g_layer.shape}, "
                f"autodiff gradient {g_ad.shape}"
            )
        grad_diff[name] = float(np.max(np.abs(g_layer - g_ad)))
        grad_size[name] = float(np.max(np.abs(g_layer)))
    loss_diff = abs(loss - ad_loss)
    return {
        "loss": loss,
        "loss_diff": loss_diff,
        "grad_diff": grad_diff,
        "grad_size": grad_size,
        "max_diff": max(loss_diff, *grad_diff.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a smaller network")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = dict(n=8, d=4, hidden=5, out=2) if args.smoke else dict(n=64, d=10, hidden=32, out=3)
    report = compare(**sizes, seed=args.seed)
    print(
        "2-layer tanh MLP, MSE, float64: "
        + ", ".join(f"{k}={v}" for k, v in sizes.items())
        + f", seed={args.seed}"
    )
    print(f"loss {report['loss']:.12g}  (|Layer - autodiff| = {report['loss_diff']:.3e})")
    for name, diff in report["grad_diff"].items():
        size = report["grad_size"][name]
        print(f"  d loss / d {name}: max |grad| = {size:.3e}, max |Layer - autodiff| = {diff:.3e}")
    ok = report["max_diff"] <= TOLERANCE
    print(
        f"max difference {report['max_diff']:.3e}: {'OK' if ok else 'FAIL'} (tolerance {TOLERANCE})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
