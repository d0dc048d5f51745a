"""Deliberately naive loop oracles for batch normalisation, in the layers' own layouts.

They are written differently from the kernels on purpose: on the array as the layer sees it
(NCHW images, ``(N, D)`` / ``(N, T, D)`` features) instead of the kernels' ``(A, C, B)``
view; one channel at a time, its values gathered by a loop over every index of the array;
statistics summed one value at a time in Python floats; and the backward pass by the long
chain rule — the gradient through ``x̂`` directly, through the variance and through the mean,
term by term, as textbooks derive it — instead of the compact form the kernels use. Slow:
use them on small shapes only.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def channel_indices(shape, axis):
    """For each channel, the list of index tuples of its values (all axes but ``axis``)."""
    axis = axis % len(shape)
    out = [[] for _ in range(shape[axis])]
    for index in itertools.product(*(range(d) for d in shape)):
        out[index[axis]].append(index)
    return out


def statistics(x, axis):
    """Per channel: the mean and the biased variance (divided by M), as Python floats."""
    means, variances = [], []
    for indices in channel_indices(x.shape, axis):
        values = [float(x[i]) for i in indices]
        m = len(values)
        mu = sum(values) / m
        means.append(mu)
        variances.append(sum((v - mu) ** 2 for v in values) / m)
    return np.array(means), np.array(variances)


def forward(x, gamma, beta, eps, axis, relu=False, mean=None, var=None):
    """``y = γ (x − μ) / √(σ² + ε) + β`` per channel (then ReLU); with ``mean`` and ``var``
    given (the running statistics of inference) those, else the batch's. Returns ``y``
    (float64) and the ``μ``, ``σ²`` used."""
    if mean is None:
        mean, var = statistics(x, axis)
    y = np.zeros(x.shape)
    for c, indices in enumerate(channel_indices(x.shape, axis)):
        s = 1.0 / math.sqrt(var[c] + eps)
        for i in indices:
            v = gamma[c] * (float(x[i]) - mean[c]) * s + beta[c]
            y[i] = max(v, 0.0) if relu else v
    return y, mean, var


def backward(x, gamma, beta, dy, eps, axis, relu=False, mean=None, var=None):
    """Gradients for ``x``, ``γ`` and ``β`` of :func:`forward` (batch statistics unless
    ``mean`` and ``var`` are given: then they are constants).

    The long form: ``g = γ·dz`` at ``x̂``; ``dσ² = Σ g (x − μ) · (−½)(σ² + ε)^(−3/2)``;
    ``dμ = Σ g · (−1/√(σ² + ε)) + dσ² · Σ −2(x − μ) / M``;
    ``dx = g / √(σ² + ε) + dσ² · 2(x − μ)/M + dμ / M``.
    """
    batch = mean is None
    y, mean, var = forward(x, gamma, beta, eps, axis, relu, mean, var)
    dx = np.zeros(x.shape)
    dgamma, dbeta = np.zeros(len(gamma)), np.zeros(len(gamma))
    for c, indices in enumerate(channel_indices(x.shape, axis)):
        m = len(indices)
        mu, s = mean[c], 1.0 / math.sqrt(var[c] + eps)
        dz = {i: float(dy[i]) * (1.0 if (not relu or y[i] > 0) else 0.0) for i in indices}
        x_hat = {i: (float(x[i]) - mu) * s for i in indices}
        for i in indices:
            dgamma[c] += dz[i] * x_hat[i]
            dbeta[c] += dz[i]
        g = {i: dz[i] * gamma[c] for i in indices}
        if not batch:
            for i in indices:
                dx[i] = g[i] * s
            continue
        dvar = sum(g[i] * (float(x[i]) - mu) for i in indices) * -0.5 * s**3
        dmu = sum(g[i] * -s for i in indices) + dvar * sum(-2 * (float(x[i]) - mu)
                                                           for i in indices) / m  # fmt: skip
        for i in indices:
            dx[i] = g[i] * s + dvar * 2 * (float(x[i]) - mu) / m + dmu / m
    return dx, dgamma, dbeta
