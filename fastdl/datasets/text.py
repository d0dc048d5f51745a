"""Character-level text: load a file as a vocabulary and integer codes; cut (N, T) windows."""

import os

import numpy as np

from ._checks import as_array, require_int, require_integer_dtype, require_ndim

__all__ = ["load_text", "text_windows"]


def load_text(path, *, encoding="utf-8"):
    """Read a text file and encode it character by character.

    The vocabulary is the sorted set of distinct characters (sorted by code point, so it is
    the same on every run; the book's ``list(set(text))`` is not). Line endings are kept as
    they are in the file (no newline translation).

    Parameters
    ----------
    path : str or os.PathLike
        The text file, for example ``tinyshakespeare.txt``.
    encoding : str, default "utf-8"
        Text encoding of the file.

    Returns
    -------
    vocab : list of str, length V
        The distinct characters; ``vocab[i]`` is the character coded ``i``.
    codes : ndarray of int64, shape (L,)
        The text, one code per character (L characters); ``"".join(vocab[i] for i in
        codes)`` gives the text back.

    Raises
    ------
    TypeError
        ``path`` is not a str or os.PathLike.
    FileNotFoundError
        No such file.
    UnicodeDecodeError
        The file is not valid in ``encoding``.
    ValueError
        The file is empty.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"load_text: path must be a str or os.PathLike, got {type(path).__name__}")
    with open(path, encoding=encoding, newline="") as f:
        text = f.read()
    if not text:
        raise ValueError(f"load_text: {os.fspath(path)} is empty")
    code_points = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    unique, codes = np.unique(code_points, return_inverse=True)
    vocab = [chr(c) for c in unique.tolist()]
    return vocab, codes.astype(np.int64, copy=False).reshape(-1)


def text_windows(codes, seq_len, *, step=None):
    """Cut an encoded text into input/target windows for character-level models.

    Window ``i`` starts at ``s = i * step``: the input is ``codes[s : s + T]`` and the
    target is the same window shifted by one character, ``codes[s + 1 : s + T + 1]``, so
    that the model learns to predict each next character.

    Parameters
    ----------
    codes : array_like of int, shape (L,)
        Encoded text, as returned by :func:`load_text`.
    seq_len : int
        T, the window length, at least 1; ``L >= T + 1`` is needed for one window.
    step : int, optional
        Offset between consecutive windows, at least 1; default ``seq_len``
        (non-overlapping windows). ``step=1`` gives every window.

    Returns
    -------
    inputs : ndarray, shape (N, T)
        N = ``(L - T - 1) // step + 1`` windows; dtype of ``codes``.
    targets : ndarray, shape (N, T)
        ``targets[i, t] == inputs[i, t + 1]`` and ``targets[i, T - 1]`` is the character
        after window ``i``.

    Both are read-only views into ``codes`` (no copy, even for ``step=1``); index a batch
    (``inputs[idx]``) or call ``np.array(inputs)`` to get a writable copy.

    Raises
    ------
    TypeError
        ``codes`` is not of an integer dtype, or ``seq_len``/``step`` not an int.
    ValueError
        ``codes`` is not 1-D, ``seq_len`` or ``step`` below 1, or the text is shorter than
        ``seq_len + 1``.
    """
    func = "text_windows"
    codes = as_array(func, "codes", codes)
    require_integer_dtype(func, "codes", codes)
    require_ndim(func, "codes", codes, 1, "(L,)")
    seq_len = require_int(func, "seq_len", seq_len, 1)
    step = seq_len if step is None else require_int(func, "step", step, 1)
    if len(codes) < seq_len + 1:
        raise ValueError(
            f"{func}: a window of seq_len={seq_len} needs at least {seq_len + 1} codes "
            f"(inputs plus the next character), got {len(codes)}"
        )
    windows = np.lib.stride_tricks.sliding_window_view(codes, seq_len + 1)[::step]
    return windows[:, :-1], windows[:, 1:]


def stream_windows(codes, n_streams, seq_len):
    """Lay an encoded text out as ``n_streams`` parallel streams, in windows, for
    ``Trainer.fit(..., stateful=True, shuffle=False, batch_size=n_streams)``.

    The text is cut into ``n_streams`` contiguous rows of equal length ``R = L //
    n_streams`` (the last ``L mod n_streams`` codes are left out). Batch ``k`` (rows
    ``k·n_streams … (k+1)·n_streams − 1`` of the result) holds window ``k`` of every stream,
    so row ``i`` of each batch continues row ``i`` of the batch before: a stateful layer
    carries each stream's state from one batch to the next.

    Parameters
    ----------
    codes : array_like of int, shape (L,)
    n_streams : int
        The batch size of the stateful fit, at least 1.
    seq_len : int
        T, the window length (truncated backpropagation through time), at least 1.

    Returns
    -------
    inputs : ndarray, shape (K·n_streams, T)
        ``inputs[k·n_streams + i] = stream_i[k·T : (k+1)·T]``, with ``K`` the number of
        whole windows whose targets fit in a stream: ``K = ⌈(R − T) / T⌉``.
    targets : ndarray, shape (K·n_streams, T)
        The same windows shifted by one code.

    Raises
    ------
    TypeError, ValueError
        As :func:`text_windows`; also when a stream is too short for one window
        (``R < T + 1``).
    """
    func = "stream_windows"
    codes = as_array(func, "codes", codes)
    require_integer_dtype(func, "codes", codes)
    require_ndim(func, "codes", codes, 1, "(L,)")
    n_streams = require_int(func, "n_streams", n_streams, 1)
    seq_len = require_int(func, "seq_len", seq_len, 1)
    length = len(codes) // n_streams
    if length < seq_len + 1:
        raise ValueError(
            f"{func}: {len(codes)} codes make {n_streams} streams of {length}, too short for "
            f"one window of seq_len={seq_len} (need {seq_len + 1} per stream)"
        )
    rows = codes[: n_streams * length].reshape(n_streams, length)
    starts = range(0, length - seq_len, seq_len)
    # (K, n_streams, T) → (K·n_streams, T): window-major, stream-minor
    x = np.stack([rows[:, s : s + seq_len] for s in starts]).reshape(-1, seq_len)
    y = np.stack([rows[:, s + 1 : s + seq_len + 1] for s in starts]).reshape(-1, seq_len)
    return x, y
