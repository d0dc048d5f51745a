"""Fixtures for the data set tests: an isolated environment, tiny IDX data, a local HTTP server.

No test here may reach the outside network: every test runs with the default mirrors
replaced by a refused 127.0.0.1 port, ``FASTDL_DATA`` unset (real-data tests restore it),
and the user cache in a temporary folder.
"""

import dataclasses
import gzip
import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from fastdl.datasets import registry

# Read before any test unsets it; CI sets FASTDL_DATA=../shared/data.
ORIGINAL_FASTDL_DATA = os.environ.get("FASTDL_DATA", "")
REPO_SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array, type_code=None):
    """The IDX encoding (header + big-endian values) of ``array``."""
    array = np.asarray(array)
    codes = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
    code = codes[array.dtype.str[1:]] if type_code is None else type_code
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def gz(data, level=9):
    return gzip.compress(data, compresslevel=level, mtime=0)


@dataclasses.dataclass
class TinyIDXDataset:
    """A small MNIST-format data set, its registry entry, and ways to write it."""

    spec: registry.IDXDataset
    arrays: tuple  # x_train, y_train, x_test, y_test

    def content(self, index):
        return idx_bytes(self.arrays[index])

    def write(self, folder, compress=True, skip=()):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(self.spec.files):
            if f.name in skip:
                continue
            data = self.content(i)
            if compress:
                (folder / f.gz_name).write_bytes(gz(data))
            else:
                (folder / f.name).write_bytes(data)
        return folder

    def check(self, loaded):
        (x_train, y_train), (x_test, y_test) = loaded
        for got, want in zip((x_train, y_train, x_test, y_test), self.arrays, strict=True):
            assert got.dtype == np.uint8
            assert got.shape == want.shape
            np.testing.assert_array_equal(got, want)


def make_tiny(name, title, n_train=12, n_test=5, seed=0, mirrors=(), system_dirs=()):
    rng = np.random.default_rng(seed)
    arrays = (
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    )
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    names += ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    files = [
        registry.IDXFile(
            n,
            a.shape,
            sha256=hashlib.sha256(idx_bytes(a)).hexdigest(),
            md5=hashlib.md5(idx_bytes(a)).hexdigest(),
        )
        for n, a in zip(names, arrays, strict=True)
    ]
    spec = registry.IDXDataset(name, title, *files, mirrors=mirrors, system_dirs=system_dirs)
    return TinyIDXDataset(spec, arrays)


def refused_port_url():
    """An http URL on 127.0.0.1 whose port refuses connections (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(autouse=True)
def isolated_data_env(monkeypatch, tmp_path):
    """No real cache, no FASTDL_DATA, no proxies, and default mirrors that refuse at once."""
    monkeypatch.delenv("FASTDL_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    refused = (refused_port_url(),)
    for attr in ("MNIST", "FASHION_MNIST"):
        spec = getattr(registry, attr)
        monkeypatch.setattr(registry, attr, dataclasses.replace(spec, mirrors=refused))


@pytest.fixture
def cache_dir(tmp_path):
    """The user cache folder of data set "mnist" under the isolated XDG_CACHE_HOME."""
    return tmp_path / "xdg-cache" / "fastdl" / "mnist"


@pytest.fixture
def tiny_mnist(monkeypatch):
    """A tiny data set installed as ``registry.MNIST`` (so ``load_mnist`` expects it)."""
    tiny = make_tiny("mnist", "MNIST", mirrors=registry.MNIST.mirrors)
    monkeypatch.setattr(registry, "MNIST", tiny.spec)
    return tiny


@pytest.fixture
def real_data_dir(monkeypatch):
    """The real data folder from FASTDL_DATA, restored into the environment; else skip."""
    if not ORIGINAL_FASTDL_DATA:
        pytest.skip("FASTDL_DATA is not set (CI sets FASTDL_DATA=../shared/data)")
    folder = Path(ORIGINAL_FASTDL_DATA).resolve()
    monkeypatch.setenv("FASTDL_DATA", str(folder))
    return folder


@pytest.fixture
def real_mnist_dir(real_data_dir):
    folder = real_data_dir / "mnist"
    if not all((folder / f.gz_name).is_file() for f in registry.MNIST.files):
        pytest.skip(f"FASTDL_DATA={ORIGINAL_FASTDL_DATA} has no mnist/ folder with the 4 files")
    return folder


@pytest.fixture
def shared_data_file():
    """Return a function giving a file of the shared data folder, skipping if absent.

    The folder is $FASTDL_DATA, else ../shared/data next to the repository.
    """

    def find(relative):
        base = Path(ORIGINAL_FASTDL_DATA) if ORIGINAL_FASTDL_DATA else REPO_SHARED_DATA
        path = base / relative
        if not path.is_file():
            pytest.skip(f"{path} not found (set FASTDL_DATA to the shared data folder)")
        return path

    return find


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class LocalServer:
    """An HTTP server on 127.0.0.1; ``routes[path]`` is bytes, an int status, or a callable."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                route = outer.routes.get(self.path, 404)
                if callable(route):
                    route(self)
                elif isinstance(route, int):
                    self.send_error(route)
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(route)))
                    self.end_headers()
                    self.wfile.write(route)

            def log_message(self, *args):
                pass

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def mirror(self, prefix):
        """Base URL of a mirror served under ``/prefix/``."""
        return f"{self.url}/{prefix}/"

    def serve_dataset(self, prefix, tiny, transform=None):
        """Serve ``tiny``'s four files gzip-compressed under ``/prefix/``."""
        for i, f in enumerate(tiny.spec.files):
            payload = gz(tiny.content(i))
            self.routes[f"/{prefix}/{f.gz_name}"] = transform(payload) if transform else payload

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def server():
    srv = LocalServer()
    yield srv
    srv.close()


@pytest.fixture
def helpers():
    """The helper functions of this conftest, for tests (conftest is not importable)."""
    import types

    return types.SimpleNamespace(
        idx_bytes=idx_bytes, gz=gz, make_tiny=make_tiny, refused_port_url=refused_port_url
    )
