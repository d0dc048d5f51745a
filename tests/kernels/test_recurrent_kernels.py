"""Three tiers for the RNN, GRU and LSTM time loops: naive oracle → NumPy twin → numba twin."""

from __future__ import annotations

import naive_rnn
import numpy as np
import pytest

from fastdl import config

# (N, T, D, H): batch of 1, T = 1, one feature, one unit, odd sizes, more rows than threads
SHAPES = [
    (1, 1, 1, 1),
    (2, 1, 3, 4),
    (1, 5, 2, 3),
    (3, 4, 5, 6),
    (4, 9, 3, 17),
    (7, 3, 8, 33),
]
SHAPE_IDS = [f"N{n}-T{t}-D{d}-H{h}" for n, t, d, h in SHAPES]
DTYPES = [np.float32, np.float64]
IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb", "st"]
# Per cell: names of the gradients the backward kernel returns, of the states the forward
# kernel exposes, and of everything it saves for the backward pass.
CELLS = {
    "rnn": (["dx", "dW_ih", "dW_hh", "db", "dh0"], ["hs"], ["hs"]),
    "gru": (["dx", "dW_ih", "dW_hh", "db_ih", "db_hh", "dh0"], ["hs"], ["hs", "acts", "qn"]),
    "lstm": (["dx", "dW_ih", "dW_hh", "db", "dh0", "dc0"], ["hs", "cs"], ["hs", "cs", "acts"]),
}


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("ids", [False, True], ids=["dense", "ids"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_twin_matches_naive_oracle(shape, ids, dtype, impl, cell):
    names, visible_names, _ = CELLS[cell]
    case = naive_rnn.make_case(cell, *shape, dtype, seed=sum(shape), ids=ids)
    inp = case["tokens"] if ids else case["x"]
    visible, _, grads = naive_rnn.run_kernels(
        cell, impl, inp, case["params"], case["state"], case["dhs"]
    )
    want_states, want_grads = naive_rnn.ORACLES[cell](
        case["x"], *case["params"], *case["state"], case["dhs"]
    )
    for got, want, name in zip(visible, want_states, visible_names, strict=True):
        naive_rnn.assert_close(got, want, dtype, name)
    for got, want, name in zip(grads, want_grads, names, strict=True):
        if name == "dx" and ids:
            assert got is None, "token ids have no input gradient"
            continue
        naive_rnn.assert_close(got, want, dtype, name)


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twin unavailable when pure")
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(16, 12, 20, 64), (5, 30, 7, 40)], ids=["wide", "long"])
def test_numba_matches_numpy_on_every_output(shape, dtype, cell):
    names, _, saved_names = CELLS[cell]
    case = naive_rnn.make_case(cell, *shape, dtype, seed=7)
    args = (case["x"], case["params"], case["state"], case["dhs"])
    _, saved_np, grads_np = naive_rnn.run_kernels(cell, "np", *args)
    _, saved_nb, grads_nb = naive_rnn.run_kernels(cell, "nb", *args)
    for got, want, name in zip(saved_nb, saved_np, saved_names, strict=True):
        naive_rnn.assert_close(got, want, dtype, name)
    for got, want, name in zip(grads_nb, grads_np, names, strict=True):
        naive_rnn.assert_close(got, want, dtype, name)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("impl", IMPLS)
def test_need_dx_false_skips_only_dx(impl, cell):
    case = naive_rnn.make_case(cell, 3, 4, 5, 6, np.float64, seed=1)
    args = (case["x"], case["params"], case["state"], case["dhs"])
    _, _, with_dx = naive_rnn.run_kernels(cell, impl, *args, need_dx=True)
    _, _, without = naive_rnn.run_kernels(cell, impl, *args, need_dx=False)
    assert without[0] is None
    for a, b in zip(with_dx[1:], without[1:], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
