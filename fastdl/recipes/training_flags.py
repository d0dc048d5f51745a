"""The flags every ``fastdl train MODEL`` shares, and what they do around ``Trainer.fit``.

``--epochs --batch-size --lr --seed --threads --pure --plot FILE --save FILE
--export-onnx FILE --checkpoint FILE --checkpoint-every N --resume FILE``:

- ``--checkpoint FILE`` writes fit's whole state there at the end of every epoch (and every
  ``--checkpoint-every`` batches); ``--resume FILE`` continues the run that wrote it, bit
  for bit, and keeps checkpointing to the same file (unless ``--checkpoint`` names
  another). Give a resumed run the same flags as the first (checked by ``fit``).
- ``--save FILE`` writes the trained network and its optimizer (``fd.load`` or
  ``fd.load_with_optimizer`` reads it); ``--plot FILE`` draws the loss and accuracy curves
  to a PNG (matplotlib, ``pip install 'fastdl[plot]'``).
- ``--export-onnx FILE`` writes the trained network as an ONNX model
  (:func:`fastdl.onnx.export`, for examples of the shape it was trained on, batch axis
  dynamic; ``pip install 'fastdl[onnx]'``). Without ``onnx`` installed the run stops before
  it loads any data.
- ``--pure`` runs the NumPy twins instead of the compiled kernels; ``--threads N`` sets the
  thread count.
"""

from __future__ import annotations

import argparse
import contextlib

import fastdl as fd
from fastdl.recipes.arguments import positive_float, positive_int

__all__ = ["add_training_flags", "fit_options", "running", "announce", "finish", "TrainingTime"]


def add_training_flags(
    parser: argparse.ArgumentParser, *, epochs: int, batch_size: int, lr: float, seed: int
) -> None:
    """Add the shared flags to ``parser`` with this model's defaults."""
    g = parser.add_argument_group("training (shared by every fastdl train MODEL)")
    g.add_argument("--epochs", type=positive_int, default=epochs, help="default %(default)s")
    g.add_argument("--batch-size", type=positive_int, default=batch_size,
                   help="default %(default)s")  # fmt: skip
    g.add_argument("--lr", type=positive_float, default=lr, help="learning rate (%(default)s)")
    g.add_argument("--seed", type=int, default=seed, help="default %(default)s")
    g.add_argument("--threads", type=positive_int, help="threads (default: all cores)")
    g.add_argument("--pure", action="store_true", help="run the NumPy twins (no numba)")
    g.add_argument("--plot", metavar="FILE", help="draw the training curves to this PNG")
    g.add_argument("--save", metavar="FILE",
                   help="save the trained network and optimizer (fd.load reads it)")  # fmt: skip
    g.add_argument("--export-onnx", metavar="FILE",
                   help="export the trained network as ONNX (needs fastdl[onnx])")  # fmt: skip
    g.add_argument("--checkpoint", metavar="FILE",
                   help="write fit's whole state here after every epoch")  # fmt: skip
    g.add_argument("--checkpoint-every", type=positive_int, metavar="N",
                   help="also checkpoint every N batches")  # fmt: skip
    g.add_argument("--resume", metavar="FILE",
                   help="continue the run that wrote this checkpoint (same flags)")  # fmt: skip


def fit_options(args) -> dict:
    """``checkpoint=``, ``checkpoint_every=`` and ``resume=`` for ``Trainer.fit``.

    Also checks the flags that would fail after training, before any data is loaded:
    ``--checkpoint-every`` without a checkpoint file, ``--export-onnx`` without ``onnx``.
    """
    checkpoint = args.checkpoint or args.resume
    if args.checkpoint_every is not None and checkpoint is None:
        raise SystemExit("--checkpoint-every needs --checkpoint FILE (or --resume FILE)")
    if args.export_onnx:
        from fastdl.onnx import require_onnx

        try:
            require_onnx()
        except ImportError as error:
            raise SystemExit(f"--export-onnx: {error}") from None
    return {"checkpoint": checkpoint, "checkpoint_every": args.checkpoint_every,
            "resume": args.resume}  # fmt: skip


@contextlib.contextmanager
def running(args):
    """Apply ``--threads`` and ``--pure`` for the block."""
    if args.threads is not None:
        fd.set_num_threads(args.threads)
    with fd.config.use_pure(True) if args.pure else contextlib.nullcontext():
        yield


def announce(name: str, n_train: int, batch_size: int, epochs: int, extra: str = "") -> None:
    """Print the run's first line: data, batch, epochs (``extra`` after them), which kernels
    run and on how many threads. Call it inside :func:`running`, which sets both."""
    kernels = "pure NumPy" if fd.config.pure() else "numba"
    print(f"{name}: {n_train} training images, batch {batch_size}, {epochs} epoch(s), "
          f"{extra + ', ' if extra else ''}{kernels} kernels, "
          f"{fd.config.get_num_threads()} thread(s)", flush=True)  # fmt: skip


def finish(args, name: str, history, net, optim) -> None:
    """``--plot``, ``--save`` and ``--export-onnx`` after training."""
    if args.plot:
        history.plot(args.plot, title=name)
        print(f"training curves drawn to {args.plot}", flush=True)
    if args.save:
        net.save(args.save, optimizer=optim)
        print(f"network saved to {args.save} (fd.load reads it)", flush=True)
    if args.export_onnx:
        from fastdl.onnx import export

        with running(args):  # the probe pass of the export runs the kernels --pure chose
            export(net, args.export_onnx, net.input_shape)
        dtype = "float32" if net.input_kind == "float" else "int64"
        shape = ", ".join(map(str, net.input_shape))
        print(
            f"network exported to {args.export_onnx} (ONNX; input {dtype} (batch, {shape}))",
            flush=True,
        )


class TrainingTime(fd.Callback):
    """Sums the epochs' training seconds and images (evaluations left out), for the
    images/s a recipe reports: ``images / seconds``."""

    def __init__(self) -> None:
        self.seconds, self.images = 0.0, 0

    def on_epoch_end(self, trainer, logs):
        self.seconds += logs["seconds"]
        self.images += round(logs["images_per_s"] * logs["seconds"])
