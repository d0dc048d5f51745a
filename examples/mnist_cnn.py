"""The reference CNN of PyTorch's MNIST example, trained on MNIST: ≥ 99.0% in 5 epochs.

The same run as ``fastdl train mnist-cnn`` (see :mod:`fastdl.recipes.mnist_cnn` for the
network and the options)::

    python examples/mnist_cnn.py              # 5 epochs
    python examples/mnist_cnn.py --smoke      # seconds: 2,048 images, 1 epoch
"""

from fastdl.recipes.mnist_cnn import main

if __name__ == "__main__":
    main()
