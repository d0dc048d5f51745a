"""load_text and text_windows: character vocabulary, integer codes, (N, T) windows."""

import numpy as np
import pytest

from fastdl.datasets import load_text, text_windows


def test_load_text_round_trip(tmp_path):
    path = tmp_path / "t.txt"
    text = "hello, world\r\nçà ünïcode ✓\n"
    path.write_bytes(text.encode("utf-8"))
    vocab, codes = load_text(path)
    assert vocab == sorted(set(text))
    assert codes.dtype == np.int64 and codes.shape == (len(text),)
    assert "".join(vocab[i] for i in codes) == text  # \r\n kept as is


def test_load_text_other_encoding(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café".encode("latin-1"))
    vocab, _ = load_text(str(path), encoding="latin-1")
    assert vocab == ["a", "c", "f", "é"]
    with pytest.raises(UnicodeDecodeError):
        load_text(path)


def test_load_text_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="load_text: .*empty.txt is empty"):
        load_text(tmp_path / "empty.txt")
    with pytest.raises(FileNotFoundError):
        load_text(tmp_path / "missing.txt")
    with pytest.raises(TypeError, match="load_text: path must be a str or os.PathLike, got int"):
        load_text(3)


def test_tinyshakespeare(shared_data_file):
    vocab, codes = load_text(shared_data_file("text/tinyshakespeare.txt"))
    assert len(vocab) == 65 and codes.shape == (1_115_394,)
    assert "".join(vocab[i] for i in codes[:14]) == "First Citizen:"
    x, y = text_windows(codes, 100)
    assert x.shape == y.shape == (11_153, 100)


def test_windows_are_shifted_by_one():
    codes = np.arange(11)
    x, y = text_windows(codes, 3)
    np.testing.assert_array_equal(x, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    np.testing.assert_array_equal(y, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    x, y = text_windows(codes, 3, step=1)
    assert x.shape == (8, 3)
    np.testing.assert_array_equal(x[-1], [7, 8, 9])
    np.testing.assert_array_equal(y[-1], [8, 9, 10])


@pytest.mark.parametrize("length, seq_len, step", [(2, 1, None), (11, 3, 2), (50, 7, 5), (8, 7, 1)])
def test_window_count_and_content(length, seq_len, step):
    codes = np.arange(length, dtype=np.int32) * 3
    x, y = text_windows(codes, seq_len, step=step)
    stride = seq_len if step is None else step
    assert x.shape == y.shape == ((length - seq_len - 1) // stride + 1, seq_len)
    assert x.dtype == codes.dtype
    for i in range(len(x)):
        start = i * stride
        np.testing.assert_array_equal(x[i], codes[start : start + seq_len])
        np.testing.assert_array_equal(y[i], codes[start + 1 : start + seq_len + 1])


def test_windows_are_read_only_views():
    codes = np.arange(1000)
    x, y = text_windows(codes, 10, step=1)
    assert np.shares_memory(x, codes) and not x.flags.writeable
    batch = x[[0, 5]]
    batch[0, 0] = -1  # a batch is a copy
    assert codes[0] == 0


@pytest.mark.parametrize(
    "codes, seq_len, step, error, match",
    [
        (np.arange(3), 3, None, ValueError, "needs at least 4 codes .* got 3"),
        (np.arange(10.0), 3, None, TypeError, "text_windows: codes must have an integer dtype"),
        (np.arange(10).reshape(2, 5), 3, None, ValueError, r"codes must have shape \(L,\)"),
        (np.arange(10), 0, None, ValueError, "seq_len must be >= 1"),
        (np.arange(10), 3, 0, ValueError, "step must be >= 1"),
        (np.arange(10), 2.5, None, TypeError, "seq_len must be an int"),
        (["a", "b"], 1, None, TypeError, "codes must be a numeric array"),
    ],
)
def test_window_errors(codes, seq_len, step, error, match):
    with pytest.raises(error, match=match):
        text_windows(codes, seq_len, step=step)
