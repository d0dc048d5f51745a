"""fit(augment=...): training batches only, drawn from fit's generator — the same seed gives
the same bits, a resumed run continues bit for bit, N data-parallel ranks train as one —
and ``fd.augment.RandomTranslate`` itself."""

from __future__ import annotations

import numpy as np
import pytest
from interruptions import Stop, fail_at_batch
from naive_augment import translate as naive_translate

import fastdl as fd
from fastdl.distributed.fake import run_fake

FIT = dict(epochs=3, eval_every=1, batch_size=16, verbose=0, seed=4, patience=3)


def cnn(seed=2, dtype=np.float32):
    return fd.NeuralNetwork(
        [fd.Conv2D(3, 3, activation=fd.ReLU()), fd.MaxPool2D(2, dropout=0.75), fd.Flatten(),
         fd.Dense(6, fd.Tanh(), dropout=0.5), fd.Dense(3)],
        fd.SoftmaxCrossEntropy(), seed=seed, dtype=dtype,
    )  # fmt: skip


def data(n=90):
    rng = np.random.default_rng(5)
    return rng.random((n, 1, 8, 8), dtype=np.float32), rng.integers(0, 3, n)


def same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def fit(augment, seed=4, net=None, **extra):
    x, y = data()
    net = cnn() if net is None else net
    history = fd.Trainer(net, fd.SGDMomentum(0.05)).fit(
        x, y, x[:30], y[:30], **{**FIT, "seed": seed, **extra}, augment=augment
    )
    return net.get_weights(), history


class Recording:
    """An augmentation that records every batch it is given (and the generator)."""

    def __init__(self, inner=None):
        self.inner = inner or fd.augment.RandomTranslate(1)
        self.batches, self.rngs = [], []

    def __call__(self, x, rng):
        self.batches.append(x.copy())
        self.rngs.append(rng)
        return self.inner(x, rng)


# -- the same seed, the same bits ---------------------------------------------------------------


def test_the_same_seed_gives_the_same_bits_and_augmenting_changes_training():
    first, h1 = fit(fd.augment.RandomTranslate(2))
    second, h2 = fit(fd.augment.RandomTranslate(2))
    assert same(first, second) and h1.val_loss == h2.val_loss
    plain, _ = fit(None)
    assert not same(first, plain)
    other_seed, _ = fit(fd.augment.RandomTranslate(2), seed=5)
    assert not same(first, other_seed)


def test_fit_is_the_loop_by_hand_with_the_shuffling_generator():
    """fit draws each epoch's order, then each batch's shifts, from one generator seeded by
    its seed: a hand-written loop doing that ends on the same bits."""
    x, y = data()
    shift = fd.augment.RandomTranslate(2)
    fitted = cnn()
    fd.Trainer(fitted, fd.SGDMomentum(0.05)).fit(
        x, y, **{**FIT, "early_stopping": False}, augment=shift
    )
    by_hand = cnn()
    optim = fd.SGDMomentum(0.05)
    fd.Trainer(by_hand, optim)
    by_hand.build(x.shape[1:])
    rng = np.random.default_rng(FIT["seed"])
    for _epoch in range(FIT["epochs"]):
        order = rng.permutation(len(x))
        for b in range(0, len(x), FIT["batch_size"]):
            idx = order[b : b + FIT["batch_size"]]
            by_hand.train_batch(shift(x[idx], rng), y[idx])
            optim.step()
    assert same(fitted.params(), by_hand.params())


@pytest.mark.parametrize("evaluation", ["x_test", "split", "none"])
def test_only_training_batches_are_augmented(evaluation):
    """Training rows are positive, evaluation rows negative: the augmentation sees positive
    batches only, of the training batches' sizes, whether evaluation data is given, split off
    or absent (the training data evaluated by the moving average)."""
    x, y = data()
    extra = {"x_test": -x[:30] - 1.0, "y_test": y[:30]} if evaluation == "x_test" else {}
    if evaluation == "split":
        x, extra = np.concatenate([x[:72], -x[72:] - 1.0]), {"validation_split": 0.2}
    seen = Recording()
    net = cnn()
    trainer = fd.Trainer(net, fd.SGDMomentum(0.05, use_ema=evaluation == "none"))
    trained = []
    real = net.train_batch
    net.train_batch = lambda xb, yb: trained.append(xb) or real(xb, yb)
    trainer.fit(x, y, **{**FIT, "early_stopping": False}, augment=seen, **extra)
    n_train = 72 if evaluation == "split" else 90
    sizes = [16] * (n_train // 16) + ([n_train % 16] if n_train % 16 else [])
    assert [len(b) for b in seen.batches] == [1] + sizes * 3  # the trial call, then fit's
    assert all((b > 0).all() for b in seen.batches)
    # the network trained on what the augmentation returned: moved images
    assert len(trained) == len(sizes) * 3
    assert any(not np.array_equal(t, b) for t, b in zip(trained, seen.batches[1:], strict=True))


def test_the_generator_is_fits_own_and_the_trial_call_has_its_own():
    seen = Recording()
    x, y = data()
    net = cnn()
    fd.Trainer(net, fd.SGD(0.05)).fit(x, y, **FIT, augment=seen)
    trial, *in_fit = seen.rngs
    assert all(r is in_fit[0] for r in in_fit) and trial is not in_fit[0]
    assert in_fit[0] is not net.rng  # dropout's generator is the network's, not this one


# -- resume bit for bit ------------------------------------------------------------------------


@pytest.mark.parametrize("fail_at", [1, 4, 6, 7, 13])
def test_resuming_mid_epoch_continues_bit_for_bit(fail_at, tmp_path):
    want, want_history = fit(fd.augment.RandomTranslate(2))
    x, y = data()
    path = tmp_path / "run.ckpt"
    net = cnn()
    fail_at_batch(net, fail_at)
    with pytest.raises(Stop):
        fd.Trainer(net, fd.SGDMomentum(0.05)).fit(
            x, y, x[:30], y[:30], **FIT, checkpoint=path, checkpoint_every=2,
            augment=fd.augment.RandomTranslate(2),
        )  # fmt: skip
    fresh = cnn()
    resume = {"resume": path} if path.exists() else {}  # before the first checkpoint: anew
    history = fd.Trainer(fresh, fd.SGDMomentum(0.05)).fit(
        x, y, x[:30], y[:30], **FIT, augment=fd.augment.RandomTranslate(2), **resume
    )
    assert same(fresh.get_weights(), want)
    assert history.val_loss == want_history.val_loss
    assert history.train_loss == want_history.train_loss


def test_a_resume_with_another_augment_is_refused(tmp_path):
    x, y = data()
    path = tmp_path / "run.ckpt"
    fd.Trainer(cnn(), fd.SGD(0.05)).fit(x, y, **FIT, checkpoint=path,
                                        augment=fd.augment.RandomTranslate(2))  # fmt: skip
    plain = tmp_path / "plain.ckpt"
    fd.Trainer(cnn(), fd.SGD(0.05)).fit(x, y, **FIT, checkpoint=plain)
    for given, at, match in [
        (fd.augment.RandomTranslate(1), path, r"augment=\{'name': 'RandomTranslate', 'config': "
                                              r"\{'max_shift': 1, 'fill': None\}\} \(checkpoint"),
        (fd.augment.RandomTranslate(2, fill=0.0), path, "augment="),
        (None, path, r"augment=None \(checkpoint: \{'name': 'RandomTranslate'"),
        (fd.augment.RandomTranslate(2), plain, r"augment=.* \(checkpoint: None\)"),
        (lambda xb, rng: xb.copy(), path, r"augment=\{'name': .*<lambda>"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match="other settings than the run it continues: " + match):
            fd.Trainer(cnn(), fd.SGD(0.05)).fit(x, y, **FIT, resume=at, augment=given)
    # the same augmentation (a new object of the same config) resumes; so does none for none
    fd.Trainer(cnn(), fd.SGD(0.05)).fit(x, y, **FIT, resume=path,
                                        augment=fd.augment.RandomTranslate(2))  # fmt: skip
    fd.Trainer(cnn(), fd.SGD(0.05)).fit(x, y, **FIT, resume=plain)


# -- data parallel: N ranks train as one --------------------------------------------------------


def images(n=50):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 1, 6, 6)), rng.integers(0, 4, n)


def parallel_cnn(seed=3):
    return fd.NeuralNetwork(
        [fd.Conv2D(3, 3, padding=1, activation=fd.ReLU()), fd.MaxPool2D(2, dropout=0.8),
         fd.Flatten(), fd.Dense(8, fd.Tanh(), dropout=0.7), fd.Dense(4)],
        fd.SoftmaxCrossEntropy(), seed=seed, dtype=np.float64,
    )  # fmt: skip


def train_on(comm, augment):
    x, y = images()
    net = parallel_cnn()
    trainer = fd.Trainer(net, fd.Adam(0.01), distributed=comm)
    history = trainer.fit(x, y, x[:20], y[:20], epochs=2, eval_every=1, batch_size=16,
                          verbose=0, seed=5, early_stopping=False, augment=augment)  # fmt: skip
    return net.get_weights(), history


def relative(a, b):
    return max(float(np.max(np.abs(p - q)) / max(np.max(np.abs(q)), 1e-300))
               for p, q in zip(a, b, strict=True))  # fmt: skip


@pytest.mark.parametrize("ranks", [2, 3])
def test_n_ranks_train_as_one_process(ranks):
    """50 examples in global batches of 16: the last batch of 2 leaves rank 2 of 3 without
    rows; every rank draws the global batch's shifts, so all stay in step."""
    shift = fd.augment.RandomTranslate(2)
    with fd.config.use_pure():
        want, want_history = train_on(fd.distributed.SingleProcess(), shift)
        plain, _ = train_on(fd.distributed.SingleProcess(), None)
        results = run_fake(ranks, train_on, shift, timeout=300)
    assert not same(want, plain)
    for weights, history in results:
        assert relative(weights, want) < 1e-12
        assert history.val_loss == pytest.approx(want_history.val_loss, rel=1e-12)
    first = results[0][0]
    assert all(same(w, first) for w, _ in results)  # every rank holds the very same bits


# -- errors, before training starts -------------------------------------------------------------


def test_bad_augment_arguments_are_refused_before_training():
    x, y = data()
    net = cnn()
    trainer = fd.Trainer(net, fd.SGD(0.05))
    trainer.fit(x, y, **{**FIT, "epochs": 1})
    trained = net.get_weights()
    cases = [
        (x, 3, TypeError, r"Trainer.fit: augment must be a callable augment\(x, rng\).*got int"),
        (x, lambda xb: xb, TypeError, r"Trainer.fit: augment must take \(x, rng\)"),
        (x.reshape(90, 64), fd.augment.RandomTranslate(), ValueError,
         r"Trainer.fit: augment works on batches of images: x_train must be a float array "
         r"\(N, C, H, W\), got shape \(90, 64\) of float32"),
        ((x * 255).astype(np.uint8), fd.augment.RandomTranslate(), ValueError,
         r"got shape \(90, 1, 8, 8\) of uint8 \(scale it to floats first, e.g. x / 255\)"),
        (x, lambda xb, rng: xb[:, :, 1:], ValueError,
         r"Trainer.fit: augment\(x, rng\) must return an array of x's shape, \(1, 1, 8, 8\) "
         r"for one image \(evaluation data is never augmented\), got shape \(1, 1, 7, 8\)"),
        (x, lambda xb, rng: list(xb), ValueError, "got list"),
    ]  # fmt: skip
    for xt, augment, error, match in cases:
        with pytest.raises(error, match=match):
            trainer.fit(xt, y, **FIT, augment=augment)
        assert same(net.get_weights(), trained)  # restart=True had not re-initialised yet
    assert trainer.optim.iterations == 6  # the first fit's 6 batches only


def test_an_augment_that_changes_shape_later_is_named_with_the_batch_shape():
    x, y = data()

    def crops_batches(xb, rng):
        return xb if len(xb) == 1 else xb[:, :, 1:]

    with pytest.raises(ValueError, match=r"must return an array of x's shape \(16, 1, 8, 8\), "
                                         r"got shape \(16, 1, 7, 8\)"):  # fmt: skip
        fd.Trainer(cnn(), fd.SGD(0.05)).fit(x, y, **FIT, augment=crops_batches)


# -- RandomTranslate --------------------------------------------------------------------------


def test_random_translate_draws_every_shift_in_range_and_applies_the_kernel():
    shift = fd.augment.RandomTranslate(2)
    rng = np.random.default_rng(0)
    x = rng.random((400, 2, 5, 6))
    before = x.copy()
    state = np.random.default_rng(1).bit_generator.state
    r = np.random.default_rng(1)
    y = shift(x, r)
    np.testing.assert_array_equal(x, before)
    r.bit_generator.state = state
    shifts = r.integers(-2, 3, size=(400, 2))
    assert set(shifts.ravel()) == {-2, -1, 0, 1, 2}  # both extremes, and no move
    want = naive_translate(x, shifts, x.min(axis=(2, 3)))
    np.testing.assert_array_equal(y, want)
    assert y.dtype == x.dtype and y.flags.c_contiguous


def test_fill_none_is_each_channels_own_background_in_any_normalisation():
    """A dark digit background stays the background after standardising."""
    rng = np.random.default_rng(2)
    raw = np.zeros((3, 2, 7, 7), np.float32)
    raw[:, :, 2:5, 2:5] = rng.random((3, 2, 3, 3)) + 0.5  # ink in the middle, 0 around
    for x in (raw, (raw - 0.1307) / 0.3081, (raw - raw.mean(axis=(0, 2, 3), keepdims=True)) / 2):
        y = fd.augment.RandomTranslate(2)(x, np.random.default_rng(0))
        background = x.min(axis=(2, 3))
        assert np.isin(y, x).all()  # values are only moved (or the background, which is one)
        # the vacated pixels of each channel hold that channel's background: nothing new
        for n in range(3):
            for c in range(2):
                assert set(np.unique(y[n, c])) <= set(np.unique(x[n, c])) | {background[n, c]}


def test_fill_values_and_per_axis_bounds():
    x = np.ones((20, 3, 5, 5), np.float32)
    y = fd.augment.RandomTranslate(2, fill=-1)(x, np.random.default_rng(0))
    assert set(np.unique(y)) <= {-1.0, 1.0} and (y == -1).any()
    y = fd.augment.RandomTranslate(2, fill=[5, 6, 7])(x, np.random.default_rng(0))
    for c, v in enumerate((5, 6, 7)):
        assert set(np.unique(y[:, c])) <= {float(v), 1.0}
    columns_only = fd.augment.RandomTranslate((0, 2), fill=0)
    y = columns_only(x, np.random.default_rng(0))
    assert (y.sum(axis=3) == y[:, :, :1].sum(axis=3)).all()  # every row alike: rows never move
    assert repr(columns_only) == "RandomTranslate(max_shift=[0, 2], fill=0.0)"
    assert fd.augment.RandomTranslate(**columns_only.get_config()).get_config() == {
        "max_shift": [0, 2], "fill": 0.0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_shift": -1}, "max_shift must be an int >= 0 or a pair of them, got -1"),
        ({"max_shift": 1.5}, "max_shift must be an int >= 0"),
        ({"max_shift": True}, "max_shift must be an int >= 0"),
        ({"fill": "zero"}, "fill must be None, a finite number or one finite number per channel"),
        ({"fill": np.nan}, "fill must be None, a finite number"),
        ({"fill": [[0.0]]}, "fill must be None"),
    ],
)
def test_random_translate_refuses_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match="RandomTranslate: " + match):
        fd.augment.RandomTranslate(**kwargs)


def test_random_translate_refuses_bad_calls():
    shift = fd.augment.RandomTranslate(1)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"float array of images \(N, C, H, W\), got shape "
                                         r"\(4, 5\) of float64"):  # fmt: skip
        shift(np.zeros((4, 5)), rng)
    with pytest.raises(ValueError, match="got shape .* of uint8"):
        shift(np.zeros((1, 1, 4, 5), np.uint8), rng)
    with pytest.raises(ValueError, match="got list"):
        shift([[[[0.0]]]], rng)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator, got int"):
        shift(np.zeros((1, 1, 4, 5)), 0)
    with pytest.raises(ValueError, match="fill has 2 values .* x has 3 channels"):
        fd.augment.RandomTranslate(1, fill=[0, 1])(np.zeros((1, 3, 4, 4)), rng)


def test_the_module_is_public():
    from fastdl import augment

    assert "augment" in fd.__all__ and augment.RandomTranslate is fd.augment.RandomTranslate


class Scaled:
    """A user's augmentation with a config of numpy values and tuples."""

    def __init__(self, factor, where=(0, 1)):
        self.factor, self.where = np.float32(factor), where

    def __call__(self, x, rng):
        return x * self.factor

    def get_config(self):
        return {"factor": self.factor, "where": self.where}


def test_a_users_augment_with_numpy_values_in_its_config_resumes(tmp_path):
    x, y = data()
    path = tmp_path / "run.ckpt"
    fd.Trainer(cnn(), fd.SGD(0.05)).fit(x, y, **FIT, checkpoint=path, augment=Scaled(0.5))
    saved = fd.checkpoint.read(path)[0]["fit"]["settings"]["augment"]
    assert saved == {"name": "Scaled", "config": {"factor": 0.5, "where": [0, 1]}}
    fd.Trainer(cnn(), fd.SGD(0.05)).fit(x, y, **FIT, resume=path, augment=Scaled(0.5))
    with pytest.raises(ValueError, match=r"'factor': 0.25"):
        fd.Trainer(cnn(), fd.SGD(0.05)).fit(x, y, **FIT, resume=path, augment=Scaled(0.25))
    bad = Scaled(0.5)
    bad.where = object()
    with pytest.raises(TypeError, match=r"augment.get_config\(\) must give plain values"):
        fd.Trainer(cnn(), fd.SGD(0.05)).fit(x, y, **FIT, augment=bad)
