"""Callbacks for ``Trainer.fit``: the base class and the ones fastdl ships.

``fd.Callback`` is the base class (see :mod:`fastdl.callbacks.base` for every hook and what
its ``logs`` hold). ``TensorBoard`` needs ``pip install 'fastdl[tensorboard]'`` when it is
constructed, not when fastdl is imported. ``LRScheduler`` applies a schedule of
:mod:`fastdl.schedules` to the optimizer's learning rate.
"""

from fastdl.callbacks.base import Callback, CallbackList
from fastdl.callbacks.early_stopping import EarlyStopping
from fastdl.callbacks.lr_schedule import LRScheduler
from fastdl.callbacks.progress import Progress
from fastdl.callbacks.tensorboard import TensorBoard
from fastdl.callbacks.time_limit import TimeLimit

__all__ = [
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "LRScheduler",
    "Progress",
    "TensorBoard",
    "TimeLimit",
]
