"""NaN, ±Inf, −0.0, subnormals and huge values go through every compiled kernel as through
its NumPy twin (property-based: hypothesis draws the arrays).

Element-wise kernels and max-pooling promise the twin's bits. Kernels that sum (products,
convolutions, time loops, softmax) sum in another order, so they promise the same NaN and
infinity positions and values within rounding elsewhere. "Huge" is 1e30 for the first and
1e15 for the others: 1e30 · 1e30 overflows float32, and whether an overflowing product
becomes −inf (a multiply, then an add) or stays exact inside a fused multiply-add (BLAS)
decides between inf and NaN when an infinity is summed with it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastdl import config
from fastdl.kernels import (
    batchnorm,
    conv,
    conv_transpose,
    elementwise,
    embedding,
    gru,
    lstm,
    matmul,
    pool,
    rnn,
    softmax,
)

pytestmark = pytest.mark.skipif(config.PURE_AT_IMPORT, reason="no compiled twins when pure")

SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40, -1e-40, 1e30, -1e30]
SUMMED = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40, -1e-40, 1e15, -1e15]
RUN = settings(max_examples=60, deadline=None)


@pytest.fixture(autouse=True)
def quiet_numpy():
    """NaN and overflow are the point here: numpy's warnings about them are not failures."""
    with np.errstate(all="ignore"):
        yield


def special(dtype, shape, share=0.3, values=SUMMED):
    """Arrays of ``shape`` whose elements are ordinary numbers or, often, special values."""
    ordinary = st.floats(-3, 3, width=32 if dtype == np.float32 else 64)  # exact in both
    pick = st.one_of(ordinary, st.sampled_from(values)) if share else ordinary
    return arrays(dtype, shape, elements=pick)


def same_bits(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def alike(got, want, scale=1e30):
    """Same NaN and infinity positions; finite values within float rounding of the sums."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    for kind in (np.isnan, np.isposinf, np.isneginf):
        where = kind(got) != kind(want)
        assert not where.any(), (
            f"{kind.__name__} differs at {np.argwhere(where)[:3].tolist()}: got "
            f"{got[where][:3]}, want {want[where][:3]}"
        )
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4, atol=1e-5 * scale)


DTYPES = st.sampled_from([np.float32, np.float64])


@RUN
@given(data=st.data(), dtype=DTYPES, relu=st.booleans())
def test_convolution(data, dtype, relu):
    x = data.draw(special(dtype, (2, 5, 4, 3)))
    w = data.draw(special(dtype, (3, 2, 3, 2), share=0))
    b = data.draw(special(dtype, (2,), share=0))
    want = conv.conv2d_forward.np(x, w, b, 1, (1, 1, 0, 1), relu)
    dy = data.draw(special(dtype, want.shape))
    want_grads = conv.conv2d_backward.np(x, w, want, dy, 1, (1, 1, 0, 1), relu, True)
    for twin in ("nb", "st"):
        got = getattr(conv.conv2d_forward, twin)(x, w, b, 1, (1, 1, 0, 1), relu)
        alike(got, want)
        grads = getattr(conv.conv2d_backward, twin)(x, w, want, dy, 1, (1, 1, 0, 1), relu, True)
        for g, e in zip(grads, want_grads, strict=True):
            alike(g, e)


@RUN
@given(data=st.data(), dtype=DTYPES, stride=st.sampled_from([1, 2]))
def test_transposed_convolution(data, dtype, stride):
    x = data.draw(special(dtype, (2, 4, 3, 3)))
    w = data.draw(special(dtype, (3, 2, 2, 3), share=0))  # (KH, KW, C_out, C_in)
    b = data.draw(special(dtype, (2,), share=0))
    pad, opad = (1, 0, 0, 1), (stride - 1, 0)
    fwd, bwd = conv_transpose.conv_transpose2d_forward, conv_transpose.conv_transpose2d_backward
    want = fwd.np(x, w, b, stride, pad, opad)
    dy = data.draw(special(dtype, want.shape))
    want_grads = bwd.np(x, w, dy, stride, pad, True)
    for twin in ("nb", "st"):
        alike(getattr(fwd, twin)(x, w, b, stride, pad, opad), want)
        grads = getattr(bwd, twin)(x, w, dy, stride, pad, True)
        for g, e in zip(grads, want_grads, strict=True):
            alike(g, e)


@RUN
@given(data=st.data(), dtype=DTYPES, size=st.sampled_from([2, 3]))
def test_max_pooling_keeps_the_twins_bits(data, dtype, size):
    x = data.draw(special(dtype, (2, 6, 5, 3), 0.5, SPECIAL))
    y, idx = pool.maxpool_forward.np(x, size, 2)
    got_y, got_idx = pool.maxpool_forward.nb(x, size, 2)
    same_bits(got_y, y)
    same_bits(got_idx, idx)
    dy = data.draw(special(dtype, y.shape, 0.3, SPECIAL))
    same_bits(pool.maxpool_backward.nb(dy, idx, 6, 5, size, 2),
              pool.maxpool_backward.np(dy, idx, 6, 5, size, 2))  # fmt: skip


@RUN
@given(data=st.data(), dtype=DTYPES, trans=st.tuples(st.booleans(), st.booleans()))
def test_matrix_product(data, dtype, trans):
    a = data.draw(special(dtype, (5, 4) if trans[0] else (4, 5)))
    b = data.draw(special(dtype, (3, 5) if trans[1] else (5, 3)))
    want = matmul.matmul.np(a, b, *trans)
    for twin in ("nb", "st"):
        alike(getattr(matmul.matmul, twin)(a, b, *trans), want)


@RUN
@given(data=st.data(), dtype=DTYPES, keep=st.sampled_from([0.5, 0.8, 1.0]))
def test_elementwise_kernels_keep_the_twins_bits(data, dtype, keep):
    y = data.draw(special(dtype, (3, 2, 4, 5), 0.5, SPECIAL))
    dy = data.draw(special(dtype, (3, 2, 4, 5), 0.5, SPECIAL))
    for name in ("tanh_backward", "sigmoid_backward"):
        fn = getattr(elementwise, name)
        same_bits(fn.nb(y, dy), fn.np(y, dy))
    r = data.draw(arrays(dtype, y.shape, elements=st.floats(0, 0.5, width=32)))
    same_bits(
        elementwise.dropout_forward.nb(y, r, keep), elementwise.dropout_forward.np(y, r, keep)
    )
    same_bits(elementwise.dropout_backward.nb(dy, r, keep),
              elementwise.dropout_backward.np(dy, r, keep))  # fmt: skip


@RUN
@given(data=st.data(), dtype=DTYPES, relu=st.booleans(), planes=st.booleans())
def test_batch_normalisation(data, dtype, relu, planes):
    """A NaN or an infinity in a channel makes its statistics NaN (mean ±inf or NaN, variance
    NaN) and so every value of that channel NaN, in both twins; one in the incoming gradient
    spreads through the sums of the backward pass, to the same NaN and ±inf in both."""
    shape = (3, 4, 5) if planes else (7, 3, 1)  # (A, C, B): planes and rows
    x = data.draw(special(dtype, shape))
    gamma = data.draw(special(dtype, (shape[1],), share=0))
    beta = data.draw(special(dtype, (shape[1],), share=0))
    fwd, inf, bwd = (
        batchnorm.batchnorm_forward,
        batchnorm.batchnorm_inference,
        batchnorm.batchnorm_backward,
    )
    want = fwd.np(x, gamma, beta, 1e-5, relu)
    for g, e in zip(fwd.nb(x, gamma, beta, 1e-5, relu), want, strict=True):
        alike(g, e)
    alike(inf.nb(x, gamma, beta, relu), inf.np(x, gamma, beta, relu))
    dy = data.draw(special(dtype, shape))
    y, mean, var = want
    for batch_stats in (True, False):
        args = (x, y, dy, gamma, mean, var, 1e-5, relu, batch_stats, True)
        for g, e in zip(bwd.nb(*args), bwd.np(*args), strict=True):
            alike(g, e)


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twins unavailable")
def test_batch_normalisation_tiny_gamma_meets_an_infinite_gradient():
    """Hypothesis's find: γ/σ (7.9e-42 / 3.5e14) underflows in float32 but not in float64.
    Both twins keep it in float64, so the channel's input gradient is −inf where x̂ > 0 and
    NaN where the infinite sums cancel, the same in both (the NumPy twin's float32 k was 0,
    and 0·(−inf) made every entry NaN)."""
    x = np.full((7, 3, 1), 1e15, np.float32)
    x[6, 1, 0] = 0
    gamma = np.array([0, 7.917e-42, 0], np.float32)
    dy = np.zeros_like(x)
    dy[0, 1, 0] = np.inf
    y, mean, var = batchnorm.batchnorm_forward.np(x, gamma, np.zeros(3, np.float32), 1e-5, False)
    args = (x, y, dy, gamma, mean, var, 1e-5, False, True, True)
    with np.errstate(invalid="ignore"):
        want = batchnorm.batchnorm_backward.np(*args)
    got = batchnorm.batchnorm_backward.nb(*args)
    for g, e in zip(got, want, strict=True):
        alike(g, e)
    channel = want[0][:, 1, 0]
    assert np.isnan(channel[[0, 6]]).all() and np.isneginf(channel[1:6]).all(), channel


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twins unavailable")
def test_batch_normalisation_tiny_scale_and_an_infinite_gradient():
    """A case hypothesis found: γ/√(σ² + ε) ≈ 1e-299 times 1/(σ² + ε) ≈ 1e-29 underflowed
    to 0 in the numba twin before it met Σ dz·x̂ = −inf, making every ``dx`` of the channel
    NaN where the NumPy twin gives −inf."""
    x = np.zeros((7, 3, 1))
    x[1, 0, 0] = 1e15
    gamma, beta = np.array([3.15089466e-285, 0.0, 0.0]), np.zeros(3)
    dy = np.zeros((7, 3, 1))
    dy[0, 0, 0] = np.inf
    y, mean, var = batchnorm.batchnorm_forward.np(x, gamma, beta, 1e-5, False)
    args = (x, y, dy, gamma, mean, var, 1e-5, False, True, True)
    want = batchnorm.batchnorm_backward.np(*args)
    assert np.isneginf(want[0][2:, 0]).all()  # the case: −inf, not NaN, in the NumPy twin
    for g, e in zip(batchnorm.batchnorm_backward.nb(*args), want, strict=True):
        alike(g, e)


@RUN
@given(data=st.data(), dtype=DTYPES)
def test_softmax_cross_entropy(data, dtype):
    z = data.draw(special(dtype, (6, 5), share=0.2))
    y = data.draw(arrays(np.int64, (6,), elements=st.integers(0, 4)))
    loss, p = softmax.softmax_ce_forward.np(z, y)
    got_loss, got_p = softmax.softmax_ce_forward.nb(z, y)
    alike([got_loss], [loss])
    alike(got_p, p, scale=1)
    alike(softmax.softmax_ce_backward.nb(p, y), softmax.softmax_ce_backward.np(p, y), scale=1)


@RUN
@given(data=st.data(), dtype=DTYPES)
def test_embedding(data, dtype):
    w = data.draw(special(dtype, (7, 3), 0.5, SPECIAL))
    ids = data.draw(arrays(np.int64, (2, 5), elements=st.integers(0, 6)))
    same_bits(embedding.embedding_forward.nb(w, ids), embedding.embedding_forward.np(w, ids))
    dout = data.draw(special(dtype, (2, 5, 3)))
    alike(embedding.embedding_backward.nb(ids, dout, 7),
          embedding.embedding_backward.np(ids, dout, 7))  # fmt: skip


CELLS = {
    "rnn": (rnn.rnn_forward, rnn.rnn_backward, 1, 1, 1),
    "gru": (gru.gru_forward, gru.gru_backward, 3, 2, 1),
    "lstm": (lstm.lstm_forward, lstm.lstm_backward, 4, 1, 2),
}


@RUN
@given(data=st.data(), dtype=DTYPES, cell=st.sampled_from(sorted(CELLS)))
def test_recurrent_time_loops(data, dtype, cell):
    fwd, bwd, gates, n_biases, n_states = CELLS[cell]
    n, t, d, h = 3, 4, 2, 3
    x = data.draw(special(dtype, (n, t, d), share=0.15))
    w_ih = data.draw(special(dtype, (d, gates * h), share=0))
    w_hh = data.draw(special(dtype, (h, gates * h), share=0))
    biases = [data.draw(special(dtype, (gates * h,), share=0)) for _ in range(n_biases)]
    state = [data.draw(special(dtype, (n, h), share=0)) for _ in range(n_states)]
    want = fwd.np(x, w_ih, w_hh, *biases, *state)
    want = want if isinstance(want, tuple) else (want,)
    # float32 time loops use a rational tanh (within 4e-7): where tanh saturates, 1 − h² is
    # exactly 0 in NumPy and a few ulps in the kernel, so an infinite incoming gradient gives
    # NaN in one and ±inf in the other. Infinite gradients are drawn in float64 only.
    finite = [v for v in SUMMED if not np.isinf(v)]
    dhs = data.draw(special(dtype, (n, t, h), 0.15, SUMMED if dtype == np.float64 else finite))
    want_grads = bwd.np(x, w_ih, w_hh, *state, *want, dhs, True)
    for twin in ("nb", "st"):
        got = getattr(fwd, twin)(x, w_ih, w_hh, *biases, *state)
        got = got if isinstance(got, tuple) else (got,)
        for g, e in zip(got, want, strict=True):
            alike(g, e)
        grads = getattr(bwd, twin)(x, w_ih, w_hh, *state, *want, dhs, True)
        for g, e in zip(grads, want_grads, strict=True):
            alike(g, e)
