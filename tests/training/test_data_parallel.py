"""Data-parallel fit on in-process fake ranks: N ranks compute what one process computes.

The ranks are threads (:func:`fastdl.distributed.fake.run_fake`), so the kernels run as their
NumPy twins here (fastdl's settings, such as the BLAS thread count held during a pass, are
process-wide, not per thread); the real MPI runs, with the compiled kernels, are in
``tests/distributed/``.
"""

import numpy as np
import pytest

import fastdl as fd
from fastdl._data_parallel import shard
from fastdl.distributed.fake import run_fake

V = 6


def cnn(seed=3):
    return fd.NeuralNetwork(
        [fd.Conv2D(3, 3, padding=1, activation=fd.ReLU()), fd.MaxPool2D(2, dropout=0.8),
         fd.Flatten(), fd.Dense(8, fd.Tanh(), dropout=0.7), fd.Dense(4)],
        fd.SoftmaxCrossEntropy(), seed=seed, dtype=np.float64,
    )  # fmt: skip


def lstm(seed=3, stateful=False):
    return fd.NeuralNetwork(
        [fd.LSTMLayer(5, dropout=0.8, stateful=stateful), fd.Dense(V)],
        fd.SoftmaxCrossEntropy(), seed=seed, dtype=np.float64,
    )  # fmt: skip


def images(n=50):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 1, 6, 6)), rng.integers(0, 4, n)


def sequences(n=50, t=4):
    rng = np.random.default_rng(1)
    ids = rng.integers(0, V, (n, t + 1))
    return np.eye(V)[ids[:, :-1]], ids[:, 1:]


OPTIMIZERS = {
    "sgd_momentum": lambda: fd.SGDMomentum(0.1, momentum=0.9),
    "adam": lambda: fd.Adam(0.01),
}
FIT = dict(epochs=2, eval_every=1, batch_size=16, verbose=0, seed=5, early_stopping=False)


def train(comm, build, data, optimizer, **extra):
    """Fit on this rank; return the weights, the History and the optimizer's step count."""
    x, y = data
    net = build()
    trainer = fd.Trainer(net, OPTIMIZERS[optimizer](), distributed=comm)
    history = trainer.fit(x, y, x[:20], y[:20], **{**FIT, **extra})
    return net.get_weights(), history, trainer.optim.iterations


def relative(a, b):
    return max(float(np.max(np.abs(p - q)) / max(np.max(np.abs(q)), 1e-300))
               for p, q in zip(a, b, strict=True))  # fmt: skip


def test_shards_cover_the_batch_in_order_and_differ_by_at_most_one_row():
    for n in (1, 2, 5, 16, 64):
        for size in (1, 2, 3, 4, 7):
            parts = [shard(n, r, size) for r in range(size)]
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
            lengths = [hi - lo for lo, hi in parts]
            assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)


@pytest.mark.parametrize("ranks", [2, 3, 4])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("model", ["cnn", "lstm"])
def test_n_ranks_end_on_the_weights_of_one_process(model, optimizer, ranks):
    """50 examples in global batches of 16: the last batch of 2 leaves ranks 2 and 3 of 3 or
    4 without rows (they train one row with weight 0, so their dropout draws stay in step)."""
    build, data = (cnn, images()) if model == "cnn" else (lstm, sequences())
    with fd.config.use_pure():
        want, want_history, steps = train(fd.distributed.SingleProcess(), build, data, optimizer)
        results = run_fake(ranks, train, build, data, optimizer, timeout=300)
    for weights, history, iterations in results:
        assert relative(weights, want) < 1e-12
        assert iterations == steps == 8
        assert history.val_loss == pytest.approx(want_history.val_loss, rel=1e-12)
        assert history.val_accuracy == want_history.val_accuracy
    first = results[0][0]
    assert all(all(np.array_equal(p, q) for p, q in zip(w, first, strict=True))
               for w, _, _ in results)  # every rank holds the very same bits  # fmt: skip


def test_stateful_streams_shard_by_stream_and_match_one_process():
    ids = np.random.default_rng(2).integers(0, V, 400)
    x_ids, y = fd.datasets.stream_windows(ids, 4, 5)
    data = (np.eye(V)[x_ids], y)
    stateful = dict(shuffle=False, stateful=True, batch_size=4)
    with fd.config.use_pure():
        want, _, _ = train(fd.distributed.SingleProcess(), lambda: lstm(stateful=True), data,
                           "adam", **stateful)  # fmt: skip
        results = run_fake(
            2,
            lambda comm: train(comm, lambda: lstm(stateful=True), data, "adam", **stateful),
            timeout=300,
        )
    for weights, _, _ in results:
        assert relative(weights, want) < 1e-12


class StopOnRankOne(fd.Callback):
    """Stops the run on one rank only, after batch 2 of epoch 1."""

    def on_batch_end(self, trainer, logs):
        if trainer.distributed.rank == 1 and (logs["epoch"], logs["batch"]) == (1, 2):
            trainer.stop_training = True


def test_a_stop_on_one_rank_stops_every_rank_at_the_same_batch():
    def run(comm):
        x, y = images()
        trainer = fd.Trainer(cnn(), fd.SGD(0.1), distributed=comm)
        history = trainer.fit(x, y, **{**FIT, "epochs": 5}, callbacks=[StopOnRankOne()])
        return trainer.optim.iterations, history.epoch, history.stopped_by

    with fd.config.use_pure():
        results = run_fake(3, run, timeout=300)
    assert [r[0] for r in results] == [2, 2, 2]
    assert [r[1] for r in results] == [[1]] * 3
    assert results[1][2] == "StopOnRankOne" and results[0][2] == "another process"


def test_only_rank_0_prints_and_writes_the_checkpoint(tmp_path, capsys):
    def run(comm):
        x, y = images()
        trainer = fd.Trainer(cnn(), fd.SGD(0.1), distributed=comm)
        trainer.fit(x, y, **{**FIT, "verbose": 2}, checkpoint=tmp_path / f"r{comm.rank}.ckpt")
        return comm.rank

    with fd.config.use_pure():
        run_fake(2, run, timeout=300)
    out = capsys.readouterr().out
    assert [line.split("  ")[0] for line in out.splitlines()] == ["epoch 1/2", "epoch 2/2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r0.ckpt"]


def test_every_rank_resumes_from_rank_0s_checkpoint(tmp_path):
    x, y = images()
    path = tmp_path / "run.ckpt"

    class Crash(fd.Callback):
        def on_batch_end(self, trainer, logs):
            if (logs["epoch"], logs["batch"]) == (2, 2):
                raise RuntimeError("a machine went away")

    def crash(comm):
        trainer = fd.Trainer(cnn(), fd.Adam(0.01), distributed=comm)
        trainer.fit(
            x, y, x[:20], y[:20], **FIT, checkpoint=path, checkpoint_every=1, callbacks=[Crash()]
        )

    def resume(comm):
        net = cnn()
        fd.Trainer(net, fd.Adam(0.01), distributed=comm).fit(
            x, y, x[:20], y[:20], **FIT, checkpoint=path, resume=path
        )
        return net.get_weights()

    with fd.config.use_pure():
        want = run_fake(1, lambda comm: train(comm, cnn, (x, y), "adam"))[0][0]
        with pytest.raises(RuntimeError, match="a machine went away"):
            run_fake(3, crash, timeout=300)
        assert fd.checkpoint.read(path)[0]["fit"]["batch"] in (1, 2)
        results = run_fake(3, resume, timeout=300)
    for weights in results:
        assert relative(weights, want) < 1e-12


def bn_cnn(seed=3, dense_norm=False):
    tail = [fd.Dense(8), fd.BatchNorm1D(activation=fd.Tanh())] if dense_norm else []
    return fd.NeuralNetwork(
        [fd.Conv2D(3, 3, padding=1), fd.BatchNorm2D(activation=fd.ReLU()),
         fd.MaxPool2D(2, dropout=0.8), fd.BatchNorm2D(momentum=None), fd.Flatten(), *tail,
         fd.Dense(4)],
        fd.SoftmaxCrossEntropy(), seed=seed, dtype=np.float64,
    )  # fmt: skip


@pytest.mark.parametrize(
    "ranks, n, dense_norm",
    [(2, 48, True), (3, 50, False)],
    ids=["2-ranks-bn1d", "3-ranks-empty-shard"],
)
def test_batch_norm_statistics_are_per_rank_and_rank_0s_running_statistics_everywhere(
    ranks, n, dense_norm
):
    """Each rank normalises its own rows (as DDP without SyncBatchNorm), so the weights are
    not one process's; the running statistics are rank 0's on every rank after every step
    (every rank ends with the very same bits, buffers included), and the checkpoint holds
    them. 50 rows in batches of 16 over 3 ranks: the last batch of 2 leaves rank 2 without
    rows (it trains rows 0 and 1 with weight 0: batch norm needs two)."""
    data = images(n)
    build = lambda: bn_cnn(dense_norm=dense_norm)  # noqa: E731
    with fd.config.use_pure():
        single, _, steps = train(fd.distributed.SingleProcess(), build, data, "adam")
        results = run_fake(ranks, train, build, data, "adam", timeout=300)
    first = results[0][0]
    n_params = len(build().build((1, 6, 6)).params())
    assert len(first) == n_params + (9 if dense_norm else 6)  # get_weights: params, buffers
    for weights, _, iterations in results:
        assert iterations == steps
        assert all(np.array_equal(p, q) for p, q in zip(weights, first, strict=True))
    assert int(first[n_params + 2]) == steps  # num_batches_tracked of the first batch norm
    assert relative(first[:n_params], single[:n_params]) > 1e-9  # per-rank statistics


@pytest.mark.parametrize(("ranks", "n", "batch"), [(3, 50, 16), (2, 48, 3), (4, 64, 6)])
def test_one_row_shards_for_batchnorm1d_are_refused_before_training(ranks, n, batch):
    """50 rows in batches of 16 over 3 ranks: the last batch of 2 gives ranks 0 and 1 one row
    each; batches of 3 over 2 ranks: rank 1 gets one row of every batch; 6 over 4: ranks 2
    and 3. BatchNorm1D cannot train on one row, so fit says so on every rank, up front."""
    data = images(n)

    def run(comm):
        net = bn_cnn(dense_norm=True)
        with pytest.raises(ValueError, match="leaves some process one row, on which "
                           "BatchNorm1D cannot train"):  # fmt: skip
            fd.Trainer(net, fd.Adam(0.01), distributed=comm).fit(
                *data, epochs=1, batch_size=batch, verbose=0)  # fmt: skip
        return net.layers[0].first  # nothing was set up

    with fd.config.use_pure():
        assert run_fake(ranks, run, timeout=120) == [True] * ranks
