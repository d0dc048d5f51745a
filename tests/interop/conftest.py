"""Fixtures of the interop tests: PyTorch and safetensors, each skipped with a message saying
how to install it when it is absent."""

import pytest

TORCH_MISSING = (
    "PyTorch is not installed: pip install torch==2.13.0 (the CPU build), then "
    "pip install -e '.[torch]', to run the PyTorch interop tests"
)
SAFETENSORS_MISSING = (
    "safetensors is not installed: pip install -e '.[safetensors]' to check fastdl's "
    "safetensors files against the reference reader"
)


@pytest.fixture(scope="session")
def torch():
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)
    torch.set_num_threads(1)  # two cores, shared: keep torch to one
    return torch


@pytest.fixture(scope="session")
def st_numpy():
    """``safetensors.numpy``, the reference reader and writer."""
    return pytest.importorskip("safetensors.numpy", reason=SAFETENSORS_MISSING)


@pytest.fixture(scope="session")
def st_torch(torch):
    """``safetensors.torch`` (needs PyTorch as well)."""
    return pytest.importorskip("safetensors.torch", reason=SAFETENSORS_MISSING)
