"""Data parallelism for ``Trainer.fit``: each process trains its rows of every global batch.

With a communicator of ``size`` processes (:mod:`fastdl.distributed`), every process holds
the same network, optimizer, data and shuffled order. For a global batch of ``N`` rows,
process ``r`` takes the contiguous rows ``lo:hi`` of :func:`shard` (the first ``N mod size``
processes one row more), and:

1. runs ``net.train_batch`` on them, with dropout drawing for all ``N`` rows and keeping its
   own (:func:`fastdl.ops.dropout.batch_window`), so the masks are those one process would
   draw;
2. packs each layer's gradients (means over its ``n_r`` rows) into one contiguous buffer,
   weighted by ``n_r / N``, and sums the buffers of all processes in place (an
   ``allreduce`` per layer, started as soon as the layer's backward pass is done, while the
   layers before it are still differentiated): the result is the gradient of the global
   batch's mean loss, the same in every process;
3. lets the ordinary optimizer step, in every process alike.

So ``N`` rows over any number of processes compute what one process computes (up to the
order of floating-point sums). A process whose share of a small last batch is empty trains
on the batch's first rows (two, so batch normalisation has a variance) with weight 0, so
its generator still draws what the others draw. Evaluation is sharded the same way and its
sums reduced, so every decision (divergence, early stopping, the best weights) is made on
the same numbers everywhere.

Batch normalisation is the exception to "what one process computes": each process
normalises its rows with their own statistics (PyTorch's ``BatchNorm`` under
``DistributedDataParallel``, without ``SyncBatchNorm``), so the gradients are those of the
shards' normalisations. Its running statistics, which each process moves with its own
shard's, are then replaced by process 0's after every step (:func:`broadcast_buffers`, as
DDP's ``broadcast_buffers=True``): every process evaluates, checkpoints and ends with
process 0's.
"""

from __future__ import annotations

import contextlib
import queue
import threading

import numpy as np

from fastdl.ops.dropout import batch_window

__all__ = [
    "shard",
    "train_batch",
    "first_on_each_machine",
    "broadcast_params",
    "broadcast_buffers",
    "any_flag",
]


def shard(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rows ``lo:hi`` of ``n`` that process ``rank`` of ``size`` takes: contiguous blocks,
    the first ``n mod size`` one row longer."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def train_batch(net, comm, x: np.ndarray, y: np.ndarray, stagger: bool = False) -> float:
    """This process's part of ``net.train_batch`` on a global batch ``x``, ``y`` (shapes
    ``(N, ...)``); leaves the global batch's gradients in ``net.param_grads()`` and returns
    its mean loss (both the same in every process).

    Each layer's gradients are summed across processes on a thread of their own as soon as
    its backward pass is done (:class:`_Sender`), while the layers before it are still
    differentiated: the reference CNN's largest gradient, its Dense(128) weights, is ready
    a sixth of the way into the backward pass. ``stagger=True`` (the first batch, which
    compiles the kernels): the first process of each machine computes its part first, the
    others after it (loading what it compiled); the sums then wait until all have computed.
    """
    n = len(x)
    lo, hi = shard(n, comm.rank, comm.size)
    weight = (hi - lo) / n
    if hi == lo:  # nothing of this batch here: rows with weight 0 keep the draws in step
        lo, hi = 0, min(2, n)  # two: a batch-norm layer refuses one row
    sender = _Sender(comm, weight)
    with first_on_each_machine(comm, stagger), batch_window(n, lo, hi):
        try:
            loss = net.train_batch(x[lo:hi], y[lo:hi],
                                   after_layer=None if stagger else sender.layer_done)  # fmt: skip
        finally:
            if not stagger:
                sender.finish()
    if stagger:
        for layer in reversed(net.layers):
            sender.layer_done(layer)
        sender.finish()
    broadcast_buffers(net, comm)
    return float(comm.allreduce_sum([loss * weight])[0])


class _Sender:
    """Sums gradients across processes, one layer at a time, on a thread of its own.

    Every process hands over the same layers in the same order, so the collective calls
    match; the thread is the only one calling the communicator until :meth:`finish`
    returns. Each layer's gradients are packed into one contiguous buffer, weighted by this
    process's share of the batch, summed in place and unpacked.
    """

    def __init__(self, comm, weight: float) -> None:
        self.comm, self.weight = comm, weight
        self.queue: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="fastdl-allreduce", daemon=True)
        self.thread.start()

    def layer_done(self, layer) -> None:
        grads = [g for g in layer.param_grads() if g is not None]
        if grads:
            self.queue.put(grads)

    def _run(self) -> None:
        while (grads := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain: the main thread raises the first error in finish()
            try:
                buffer = np.concatenate([g.ravel() for g in grads])
                buffer *= buffer.dtype.type(self.weight)
                self.comm.allreduce_(buffer)
                offset = 0
                for g in grads:
                    g[...] = buffer[offset : offset + g.size].reshape(g.shape)
                    offset += g.size
            except BaseException as error:  # noqa: BLE001 (re-raised in the main thread)
                self.error = error

    def finish(self) -> None:
        """Wait until every handed-over gradient is summed; raise the thread's error."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


@contextlib.contextmanager
def first_on_each_machine(comm, stagger: bool = True):
    """With ``stagger``, the block runs in each machine's first process (``local_rank`` 0)
    before the others: they wait at a barrier its process reaches after the block (also when
    the block raises, so nobody waits for ever)."""
    if not stagger:
        yield
        return
    if comm.local_rank != 0:
        comm.barrier()
        yield
        return
    try:
        yield
    finally:
        comm.barrier()


def broadcast_params(net, comm) -> None:
    """Every process takes process 0's weights and buffers (after the lazy set-up, or a
    resume)."""
    for p in net.params():
        comm.broadcast_(p, root=0)
    broadcast_buffers(net, comm)


def broadcast_buffers(net, comm) -> None:
    """Every process takes process 0's buffers (batch normalisation's running statistics),
    packed into one message; nothing to send (no call) for a network without any. Every
    process trains every step, so the int64 step counters agree already and stay put."""
    floats = [b for b in net.buffers() if b.dtype.kind == "f"]
    if not floats:
        return
    packed = np.concatenate([b.ravel() for b in floats])
    comm.broadcast_(packed, root=0)
    offset = 0
    for b in floats:
        b[...] = packed[offset : offset + b.size].reshape(b.shape)
        offset += b.size


def any_flag(comm, *flags: bool) -> list[bool]:
    """Whether each flag is set in any process."""
    return [bool(v > 0) for v in comm.allreduce_sum([float(f) for f in flags])]
