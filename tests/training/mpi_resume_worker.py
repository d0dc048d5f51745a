"""A data-parallel fit with a checkpoint every batch, for ``test_fit_over_mpi.py``'s kill test.

    python mpi_resume_worker.py OUT_DIR fresh|resume

Each rank writes its pid to ``OUT_DIR/pid-<rank>`` and then ``ready-<rank>`` after each
batch; rank 0's weights go to ``OUT_DIR/final.npz`` at the end.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np
from mpi_fit_worker import reference_cnn

import fastdl as fd


class Beat(fd.Callback):
    """Marks progress, and slows the batches so a kill lands mid-run."""

    def __init__(self, out, rank):
        self.out, self.rank = out, rank

    def on_batch_end(self, trainer, logs):
        (self.out / f"batch-{self.rank}").write_text(f"{logs['epoch']}.{logs['batch']}")
        time.sleep(0.05)


def main(out: Path, mode: str) -> None:
    comm = fd.distributed.init()
    (out / f"pid-{comm.rank}").write_text(str(os.getpid()))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 512)
    net = reference_cnn(np.float32)
    trainer = fd.Trainer(net, fd.Adam(1e-3), distributed=comm)
    ckpt = out / "run.ckpt"
    trainer.fit(x, y, x[:64], y[:64], epochs=2, eval_every=1, batch_size=64, seed=3,
                early_stopping=False, verbose=0, checkpoint=ckpt, checkpoint_every=1,
                resume=ckpt if mode == "resume" else None, callbacks=[Beat(out, comm.rank)])  # fmt: skip
    if comm.rank == 0:
        np.savez(out / "final.npz", *net.params())


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
