"""Chapter 4: the book's best MNIST multi-layer perceptron, 784-178-46-10 with tanh.

The same run as ``fastdl train mnist-mlp`` (see :mod:`fastdl.recipes.mnist_mlp` for the model, the
results measured and the options)::

    python examples/mnist_mlp.py            # full run
    python examples/mnist_mlp.py --smoke    # seconds
"""

from fastdl.recipes.mnist_mlp import main

if __name__ == "__main__":
    main()
