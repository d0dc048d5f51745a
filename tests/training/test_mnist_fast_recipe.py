"""The mnist-fast recipe: its variants build and train, its flags, and 99% on real MNIST."""

import argparse

import numpy as np
import pytest

from fastdl.recipes import mnist_fast


def test_smoke_run_reports_the_split_times(capsys):
    accs = mnist_fast.main(["--smoke", "--seeds", "0,1"])
    out = capsys.readouterr().out
    assert len(accs) == 2 and all(0.5 < a <= 1 for a in accs)
    assert "data loading" in out and "(not counted)" in out
    assert "warm-up" in out and "numba's cache (not counted)" in out
    for seed, acc in zip((0, 1), accs, strict=True):
        assert f"seed {seed}: test accuracy {100 * acc:.2f}%" in out
    assert "2 seeds: min" in out


@pytest.mark.parametrize("name", sorted(mnist_fast.VARIANTS))
def test_every_variant_builds_and_takes_mnist_shapes(name, rng):
    net = mnist_fast.build(0, name)
    out = net.predict(rng.standard_normal((3, 1, 28, 28)).astype(np.float32))
    assert out.shape == (3, 10)
    assert net.loss.label_smoothing == mnist_fast.VARIANTS[name].label_smoothing


def test_same_seed_same_bits():
    data = tuple(
        (np.random.default_rng(i).standard_normal((512, 1, 28, 28)).astype(np.float32),
         np.random.default_rng(i).integers(0, 10, 512))
        for i in (1, 2)
    )  # fmt: skip
    a = mnist_fast.train_once(3, "final", data, 1, 256, 0.02, None)
    b = mnist_fast.train_once(3, "final", data, 1, 256, 0.02, None)
    assert a[0] == b[0]
    for wa, wb in zip(a[2].get_weights(), b[2].get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_seeds_flag():
    assert mnist_fast._seeds("0, 3,4") == [0, 3, 4]
    for bad in ("", "a,b"):
        with pytest.raises(argparse.ArgumentTypeError):
            mnist_fast._seeds(bad)


def test_checkpoint_flags_are_refused():
    with pytest.raises(SystemExit, match="--checkpoint/--resume are not offered"):
        mnist_fast.main(["--smoke", "--checkpoint", "x.ckpt"])


@pytest.mark.slow
def test_two_epochs_reach_99_percent():
    """The full recipe, seed 0 (about 10–20 s here): ≥ 99.0% test accuracy."""
    (acc,) = mnist_fast.main([])
    assert acc >= 0.99
