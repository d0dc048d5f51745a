"""Chapter 6: a character-level LSTM language model on Tiny Shakespeare.

    python examples/char_lstm.py [PATH] [--minutes 15] [--smoke SECONDS] [--seed 0]
                                 [--temperature 0.8]

The same run as ``fastdl train char-lstm``: one-hot characters → LSTMLayer(256) → Dense(65),
softmax cross-entropy, a 90/10 train/validation split; prints train and validation loss
(nats per character) every minute of training, then a sample. See
:mod:`fastdl.recipes.char_lstm` for the training scheme.
"""

from fastdl.recipes.char_lstm import main

if __name__ == "__main__":
    main()
