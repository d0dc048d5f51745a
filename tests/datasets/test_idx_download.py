"""Downloads, against an HTTP server on 127.0.0.1 started by the test (never the internet)."""

import gzip

import numpy as np
import pytest

from fastdl.datasets import DatasetIntegrityError, DatasetNotFoundError, load_mnist, registry
from fastdl.datasets.download import DownloadError, fetch


def _names(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _corrupt(payload):
    """Same length, valid gzip, different content: flips one pixel of the content."""
    content = bytearray(gzip.decompress(payload))
    content[-1] ^= 0xFF
    return gzip.compress(bytes(content), mtime=0)


ALL_FOUR = sorted(f.gz_name for f in registry.MNIST.files)


def test_download_into_cache_then_reuse(server, tiny_mnist, cache_dir):
    server.serve_dataset("m1", tiny_mnist)
    tiny_mnist.check(load_mnist(mirrors=[server.mirror("m1")], progress=False))
    assert _names(cache_dir) == ALL_FOUR  # no temporary files left
    assert len(server.requests) == 4
    tiny_mnist.check(load_mnist(mirrors=[server.mirror("m1")], progress=False))
    assert len(server.requests) == 4  # second load is offline


def test_download_into_explicit_path(tmp_path, server, tiny_mnist, cache_dir):
    server.serve_dataset("m1", tiny_mnist)
    target = tmp_path / "given" / "mnist"
    tiny_mnist.check(load_mnist(target, mirrors=[server.mirror("m1")], progress=False))
    assert _names(target) == ALL_FOUR
    assert not cache_dir.exists()


def test_only_missing_files_are_downloaded(tmp_path, server, tiny_mnist):
    folder = tiny_mnist.write(tmp_path / "given", skip={"train-images-idx3-ubyte"})
    server.serve_dataset("m1", tiny_mnist)
    tiny_mnist.check(load_mnist(folder, mirrors=[server.mirror("m1")], progress=False))
    assert server.requests == ["/m1/train-images-idx3-ubyte.gz"]


@pytest.mark.parametrize("failure", [404, 500, "refused"])
def test_failing_mirror_then_working_one(server, tiny_mnist, cache_dir, helpers, failure):
    server.serve_dataset("good", tiny_mnist)
    if failure == "refused":
        bad = helpers.refused_port_url()
    else:
        bad = server.mirror("bad")
        for f in tiny_mnist.spec.files:
            server.routes[f"/bad/{f.gz_name}"] = failure
    tiny_mnist.check(load_mnist(mirrors=[bad, server.mirror("good")], progress=False))
    assert _names(cache_dir) == ALL_FOUR
    good_requests = [r for r in server.requests if r.startswith("/good/")]
    assert len(good_requests) == 4


def test_corrupt_payload_is_rejected_and_leaves_nothing(server, tiny_mnist, cache_dir):
    server.serve_dataset("m1", tiny_mnist, transform=_corrupt)
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(mirrors=[server.mirror("m1")], progress=False)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz: rejected" in message
    assert tiny_mnist.spec.train_images.sha256 in message
    assert ".part" not in message  # the file is named, not the deleted temporary download
    assert not cache_dir.parent.exists()  # not even the folders created for the download


def test_corrupt_mirror_then_good_mirror(server, tiny_mnist, cache_dir):
    server.serve_dataset("bad", tiny_mnist, transform=_corrupt)
    server.serve_dataset("good", tiny_mnist)
    mirrors = [server.mirror("bad"), server.mirror("good")]
    tiny_mnist.check(load_mnist(mirrors=mirrors, progress=False))
    assert _names(cache_dir) == ALL_FOUR


def test_not_gzip_payload_rejected(server, tiny_mnist, cache_dir):
    server.serve_dataset("m1", tiny_mnist, transform=lambda p: b"<html>Moved</html>")
    with pytest.raises(DatasetNotFoundError, match="rejected"):
        load_mnist(mirrors=[server.mirror("m1")], progress=False)
    assert _names(cache_dir) == []


def test_connection_cut_short_is_rejected(server, tiny_mnist, cache_dir):
    def cut_short(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        handler.wfile.write(b"\x1f\x8b" + b"\x00" * 50)
        handler.close_connection = True

    for f in tiny_mnist.spec.files:
        server.routes[f"/m1/{f.gz_name}"] = cut_short
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(mirrors=[server.mirror("m1")], progress=False)
    assert "train-images-idx3-ubyte.gz" in str(info.value)
    assert _names(cache_dir) == []


def test_corrupted_cache_file_is_downloaded_again(server, tiny_mnist, cache_dir):
    tiny_mnist.write(cache_dir)
    bad = cache_dir / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(_corrupt(bad.read_bytes()))
    server.serve_dataset("m1", tiny_mnist)
    tiny_mnist.check(load_mnist(mirrors=[server.mirror("m1")], progress=False))
    assert server.requests == ["/m1/t10k-images-idx3-ubyte.gz"]


@pytest.mark.parametrize("damage", ["two-corrupted", "one-missing-one-corrupted"])
def test_one_load_repairs_every_bad_cache_file(server, tiny_mnist, cache_dir, damage):
    """All bad files are found and deleted before the download, not one per call."""
    tiny_mnist.write(cache_dir)
    labels = cache_dir / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(_corrupt(labels.read_bytes()))
    images = cache_dir / "t10k-images-idx3-ubyte.gz"
    if damage == "two-corrupted":
        images.write_bytes(_corrupt(images.read_bytes()))
    else:
        images.unlink()  # an earlier download was interrupted
    server.serve_dataset("m1", tiny_mnist)
    tiny_mnist.check(load_mnist(mirrors=[server.mirror("m1")], progress=False))
    assert sorted(server.requests) == [
        "/m1/t10k-images-idx3-ubyte.gz",
        "/m1/t10k-labels-idx1-ubyte.gz",
    ]


def test_progress_on_stderr_and_silenceable(server, tiny_mnist, cache_dir, capsys):
    server.serve_dataset("m1", tiny_mnist)
    load_mnist(mirrors=[server.mirror("m1")])
    captured = capsys.readouterr()
    assert "Downloading train-images-idx3-ubyte.gz from 127.0.0.1" in captured.err
    assert "100%" in captured.err and captured.out == ""
    for f in cache_dir.iterdir():
        f.unlink()
    load_mnist(mirrors=[server.mirror("m1")], progress=False)
    assert capsys.readouterr().err == ""


def test_fetch_rejected_payload_leaves_destination_untouched(tmp_path, server):
    server.routes["/file"] = b"new content"
    dest = tmp_path / "file"
    dest.write_bytes(b"old content")

    def reject(tmp):
        raise DatasetIntegrityError("no", tmp)

    with pytest.raises(DatasetIntegrityError):
        fetch(server.url + "/file", dest, check=reject, progress=False)
    assert dest.read_bytes() == b"old content"
    assert _names(tmp_path) == ["file"]
    fetch(server.url + "/file", dest, check=lambda tmp: None, progress=False)
    assert dest.read_bytes() == b"new content"


def test_fetch_failure_keeps_existing_folders(tmp_path, server):
    with pytest.raises(DownloadError):
        fetch(server.url + "/missing", tmp_path / "a" / "b" / "x", check=lambda t: None)
    assert _names(tmp_path) == []
    (tmp_path / "a").mkdir()
    with pytest.raises(DownloadError):
        fetch(server.url + "/missing", tmp_path / "a" / "b" / "x", check=lambda t: None)
    assert _names(tmp_path) == ["a"] and _names(tmp_path / "a") == []


def test_fetch_refuses_oversized_payload(tmp_path, server):
    server.routes["/big"] = b"x" * 5000
    with pytest.raises(DownloadError, match="more than 1,000"):
        fetch(server.url + "/big", tmp_path / "big", check=lambda t: None, max_bytes=1000)
    assert _names(tmp_path) == []


def test_fetch_http_error(tmp_path, server):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(server.url + "/missing", tmp_path / "x", check=lambda t: None, progress=False)
    assert _names(tmp_path) == []


def test_real_mnist_downloads_and_verifies(tmp_path, server, real_mnist_dir, monkeypatch):
    """The real files served locally pass the real checksums (and land in the cache)."""
    monkeypatch.delenv("FASTDL_DATA")
    for f in registry.MNIST.files:
        server.routes[f"/real/{f.gz_name}"] = (real_mnist_dir / f.gz_name).read_bytes()
    (x_train, y_train), (x_test, y_test) = load_mnist(
        mirrors=[server.mirror("real")], progress=False
    )
    assert x_train.shape == (60000, 28, 28) and y_test.shape == (10000,)
    assert np.bincount(y_test, minlength=10).sum() == 10000


def test_a_server_that_trickles_bytes_meets_the_deadline_with_progress_shown(server, tmp_path,
                                                                            capsys):  # fmt: skip
    import time as _time

    from fastdl.datasets.download import DownloadError, fetch

    def trickle(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        try:
            for _ in range(1000):  # a byte every 0.1 s: each read is quick, the whole is not
                handler.wfile.write(b"x")
                handler.wfile.flush()
                _time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass

    server.routes["/slow"] = trickle
    start = _time.monotonic()
    with pytest.raises(
        DownloadError, match=r"took longer than 2 s \(\d+ of 1,000 bytes received\)"
    ):
        fetch(server.url + "/slow", tmp_path / "f.bin", check=lambda p: None, timeout=5.0,
              deadline=2.0)  # fmt: skip
    assert _time.monotonic() - start < 4.0
    assert "Downloading f.bin from 127.0.0.1" in capsys.readouterr().err  # progress while slow
    assert list(tmp_path.iterdir()) == []  # no partial file left behind
