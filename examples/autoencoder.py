"""The book's chapter-7 convolutional autoencoder on MNIST, with a transposed-convolution decoder.

The same run as ``fastdl train autoencoder`` (see :mod:`fastdl.recipes.autoencoder` for the
network and the options)::

    python examples/autoencoder.py --pictures examples/pictures   # 1 epoch, ~20 s, 2 PNGs
    python examples/autoencoder.py --smoke                        # seconds: 2,048 images
"""

from fastdl.recipes.autoencoder import main

if __name__ == "__main__":
    main()
