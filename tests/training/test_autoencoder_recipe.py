"""The chapter-7 autoencoder recipe: trains on real MNIST, draws its pictures, beats the book."""

import sys

import numpy as np
import pytest

import fastdl as fd
from fastdl.datasets import load_mnist
from fastdl.recipes import autoencoder


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def test_smoke_run_saves_and_draws(tmp_path, capsys, mnist):
    pictures, model = tmp_path / "pictures", tmp_path / "ae.npz"
    mse = autoencoder.main(["--smoke", "--pictures", str(pictures), "--save", str(model)])
    out = capsys.readouterr().out
    assert f"test MSE {mse:.4f} (the book's PyTorch run: 0.069)" in out
    for name in ("autoencoder_reconstructions.png", "autoencoder_codes.png"):
        data = (pictures / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
    # The reported MSE is the saved network's on the smoke test set (the first 1,000 images).
    (_, _), (x_test, _) = mnist
    x = autoencoder.prepare(x_test[:1000])
    net = fd.load(model)
    assert np.mean((net.predict(x) - x) ** 2) == pytest.approx(mse, rel=1e-5)
    # It learned something from 2,048 images: better than an all-grey (zero) output, which
    # is where an untrained tanh decoder starts.
    assert mse < 0.9 * np.mean(x**2)


def test_without_matplotlib_trains_and_says_so(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    autoencoder.main(["--smoke", "--pictures", str(tmp_path / "p")])
    out = capsys.readouterr().out
    assert (
        "--pictures needs matplotlib (pip install 'fastdl[plot]'); training without drawing" in out
    )
    assert not (tmp_path / "p").exists()


def test_encoder_then_decoder_is_the_network(rng):
    net = autoencoder.build(seed=1)
    x = rng.uniform(-1, 1, (5, 1, 28, 28)).astype(np.float32)
    codes = autoencoder.encode(net, x, batch_size=2)
    assert codes.shape == (5, autoencoder.CODE) and np.all(np.abs(codes) <= 1)
    out = codes
    for layer in net.layers[autoencoder.ENCODER :]:
        out = layer.forward(out, inference=True)
    np.testing.assert_allclose(out, net.predict(x), rtol=1e-6, atol=1e-6)
    assert out.shape == x.shape


def test_principal_components_against_the_covariance_eigenvectors(rng):
    # Correlated 5-D data with known structure; the oracle: eigh of the sample covariance.
    data = rng.standard_normal((2000, 5)) @ rng.standard_normal((5, 5)) + 3.0
    points, explained = autoencoder.principal_components(data, k=2)
    values, vectors = np.linalg.eigh(np.cov(data, rowvar=False, bias=True))
    top = vectors[:, ::-1][:, :2]
    want = (data - data.mean(axis=0)) @ top
    np.testing.assert_allclose(np.abs(points), np.abs(want), rtol=1e-8, atol=1e-8)  # signs free
    np.testing.assert_allclose(explained, values[::-1][:2] / values.sum(), rtol=1e-10)


def test_prepare_scales_as_the_book():
    images = np.array([[[0, 255], [51, 204]]], dtype=np.uint8)
    x = autoencoder.prepare(images)
    assert x.shape == (1, 1, 2, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0], [[-1, 1], [-0.6, 0.6]], atol=1e-6)


@pytest.mark.slow
def test_one_epoch_beats_the_books_test_mse(capsys):
    """The full recipe (1 epoch, 60,000 images, about 20 s here): test MSE ≤ the book's 0.069."""
    mse = autoencoder.main([])
    assert mse <= 0.069, capsys.readouterr().out
