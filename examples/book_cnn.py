"""Chapter 5: the book's MNIST convolutional network, with correct gradients.

The same run as ``fastdl train book-cnn`` (see :mod:`fastdl.recipes.book_cnn` for the model, the
results measured and the options)::

    python examples/book_cnn.py            # full run
    python examples/book_cnn.py --smoke    # seconds
"""

from fastdl.recipes.book_cnn import main

if __name__ == "__main__":
    main()
