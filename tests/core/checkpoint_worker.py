"""A training run for the SIGKILL tests: ``python checkpoint_worker.py MODEL FOLDER fresh|resume``.

Trains a small CNN or LSTM model with a checkpoint after every batch in FOLDER/run.ckpt
(resuming from it with ``resume``), then writes the final weights to FOLDER/final.npz. Prints
``ready`` just before training starts.
"""

import sys
from pathlib import Path

import numpy as np

import fastdl as fd

model, folder, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(11)
if model == "cnn":
    x = rng.standard_normal((3072, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 4, len(x))
    net = fd.NeuralNetwork(
        [fd.Conv2D(8, 3, activation=fd.ReLU()), fd.MaxPool2D(2, dropout=0.75), fd.Flatten(),
         fd.Dense(32, fd.ReLU(), dropout=0.5), fd.Dense(4)],
        fd.SoftmaxCrossEntropy(), seed=3,
    )  # fmt: skip
    optim = fd.Adadelta(1.0, final_lr=0.5, decay_type="linear")
    fit = dict(epochs=10, eval_every=1, batch_size=16)
else:
    ids = rng.integers(0, 20, (768, 13))
    x, y = np.eye(20, dtype=np.float32)[ids[:, :-1]], ids[:, 1:]
    net = fd.NeuralNetwork([fd.LSTMLayer(32, dropout=0.8), fd.Dense(20)],
                           fd.SoftmaxCrossEntropy(), seed=3)  # fmt: skip
    optim = fd.Adam(3e-3, clip_norm=5.0, use_ema=True, ema_momentum=0.9)
    fit = dict(epochs=10, eval_every=1, batch_size=8)
trainer = fd.Trainer(net, optim)
ckpt = folder / "run.ckpt"
print("ready", flush=True)
trainer.fit(x, y, x[:64], y[:64], seed=5, verbose=0, checkpoint=ckpt, checkpoint_every=1,
            resume=ckpt if mode == "resume" else None, **fit)  # fmt: skip
final = folder / "final.npz"
np.savez(str(final) + ".part.npz", *net.get_weights())
Path(str(final) + ".part.npz").rename(final)
