"""What the MNIST-format data sets are: file names, shapes, checksums, mirrors, system folders.

The checksums are facts about the published files, written here so that every byte a loader
returns can be checked. Each file is identified by the SHA-256 of its *uncompressed* content
(header included), so the same digest accepts the upstream ``.gz`` file, an unpacked copy
and a recompressed copy such as Debian's ``dataset-fashion-mnist`` package.

Provenance of the digests:

- MNIST: computed from files whose ``.gz`` and uncompressed MD5s equal the ones published
  with the original distribution (kept below as ``md5``). The upstream ``.gz`` files have
  SHA-256 ``440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609`` (train
  images), ``3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c`` (train
  labels), ``8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6`` (test
  images) and ``f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6`` (test
  labels); a file with those digests has the content digests below.
- Fashion-MNIST: computed from Debian's package, whose uncompressed content has the MD5s
  published upstream (kept below as ``md5``). Upstream's ``.gz`` SHA-256 are not recorded
  here; downloads are checked by their content.
"""

from dataclasses import dataclass

__all__ = ["IDXFile", "IDXDataset", "MNIST", "FASHION_MNIST"]


@dataclass(frozen=True)
class IDXFile:
    """One IDX file of a data set.

    Attributes
    ----------
    name : str
        File name without ``.gz``; the loaders accept ``name.gz`` or ``name``.
    shape : tuple of int
        Shape declared by the header, e.g. ``(60000, 28, 28)`` or ``(60000,)``.
    sha256 : str
        SHA-256 (hex) of the uncompressed content, header included.
    md5 : str
        Published MD5 of the uncompressed content, kept for cross-checks in the tests.
    """

    name: str
    shape: tuple
    sha256: str
    md5: str

    @property
    def gz_name(self):
        """The file name of the compressed file, as distributed: ``name + ".gz"``."""
        return self.name + ".gz"


@dataclass(frozen=True)
class IDXDataset:
    """An MNIST-format data set: four IDX files and where to find them.

    Attributes
    ----------
    name : str
        Folder name under ``$FASTDL_DATA`` and the user cache, e.g. ``"mnist"``.
    title : str
        Name used in messages, e.g. ``"MNIST"``.
    train_images, train_labels, test_images, test_labels : IDXFile
        The four files.
    mirrors : tuple of str
        Base URLs, tried in order; a file is downloaded from ``mirror + file.gz_name``.
    system_dirs : tuple of str
        Folders where an operating-system package installs the files.
    system_package : str
        How to install that package, for messages.
    """

    name: str
    title: str
    train_images: IDXFile
    train_labels: IDXFile
    test_images: IDXFile
    test_labels: IDXFile
    mirrors: tuple = ()
    system_dirs: tuple = ()
    system_package: str = ""

    @property
    def files(self):
        """The four files in the order train images, train labels, test images, test labels."""
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)


MNIST = IDXDataset(
    name="mnist",
    title="MNIST",
    train_images=IDXFile(
        "train-images-idx3-ubyte",
        (60000, 28, 28),
        sha256="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        md5="6bbc9ace898e44ae57da46a324031adb",
    ),
    train_labels=IDXFile(
        "train-labels-idx1-ubyte",
        (60000,),
        sha256="65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        md5="a25bea736e30d166cdddb491f175f624",
    ),
    test_images=IDXFile(
        "t10k-images-idx3-ubyte",
        (10000, 28, 28),
        sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        md5="2646ac647ad5339dbf082846283269ea",
    ),
    test_labels=IDXFile(
        "t10k-labels-idx1-ubyte",
        (10000,),
        sha256="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        md5="27ae3e4e09519cfbb04c329615203637",
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
)

FASHION_MNIST = IDXDataset(
    name="fashion-mnist",
    title="Fashion-MNIST",
    train_images=IDXFile(
        "train-images-idx3-ubyte",
        (60000, 28, 28),
        sha256="c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        md5="f4a8712d7a061bf5bd6d2ca38dc4d50a",
    ),
    train_labels=IDXFile(
        "train-labels-idx1-ubyte",
        (60000,),
        sha256="bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        md5="9018921c3c673c538a1fc5bad174d6f9",
    ),
    test_images=IDXFile(
        "t10k-images-idx3-ubyte",
        (10000, 28, 28),
        sha256="5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        md5="8181f5470baa50b63fa0f6fddb340f0a",
    ),
    test_labels=IDXFile(
        "t10k-labels-idx1-ubyte",
        (10000,),
        sha256="0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        md5="15d484375f8d13e6eb1aabb0c3f46965",
    ),
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    system_package="Debian/Ubuntu: apt-get install dataset-fashion-mnist",
)
