"""load_boston and load_california_housing on the shared files and on broken copies."""

import numpy as np
import pytest

from fastdl.datasets import (
    BOSTON_FEATURES,
    CALIFORNIA_FEATURES,
    load_boston,
    load_california_housing,
)

BOSTON_HEADER = (
    '"crim","zn","indus","chas","nox","rm","age","dis","rad","tax","ptratio","b","lstat","medv"'
)
BOSTON_ROW = '0.00632,18,2.31,"0",0.538,6.575,65.2,4.09,1,296,15.3,396.9,4.98,24'
CAL_ROW = "-122.23,37.88,41,880,129,322,126,8.3252,452600"


def test_boston(shared_data_file):
    path = shared_data_file("boston/BostonHousing.csv")
    x, y = load_boston(path)
    assert x.shape == (506, 13) and y.shape == (506,)
    assert x.dtype == y.dtype == np.float32
    assert len(BOSTON_FEATURES) == 13
    np.testing.assert_allclose(x[0], [float(v.strip('"')) for v in BOSTON_ROW.split(",")[:13]])
    assert set(np.unique(x[:, BOSTON_FEATURES.index("chas")])) == {0.0, 1.0}
    assert y.mean() == pytest.approx(22.5328, abs=1e-4)
    x2, _ = load_boston(path.parent)  # the folder works too
    np.testing.assert_array_equal(x, x2)


def test_california_matches_scikit_learn_derivation(shared_data_file):
    x, y = load_california_housing(shared_data_file("california_housing/cal_housing.data"))
    assert x.shape == (20640, 8) and y.shape == (20640,)
    assert x.dtype == y.dtype == np.float32
    means = dict(zip(CALIFORNIA_FEATURES, x.mean(0, dtype=np.float64), strict=True))
    # scikit-learn's documented means
    assert means["MedInc"] == pytest.approx(3.8707, abs=1e-4)
    assert means["AveRooms"] == pytest.approx(5.4290, abs=1e-4)
    assert means["AveOccup"] == pytest.approx(3.0707, abs=1e-4)
    assert y.mean(dtype=np.float64) == pytest.approx(2.0686, abs=1e-4)
    np.testing.assert_allclose(
        x[0], [8.3252, 41, 880 / 126, 129 / 126, 322, 322 / 126, 37.88, -122.23], rtol=1e-6
    )
    assert y[0] == pytest.approx(4.526)


def test_boston_without_header(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text(BOSTON_ROW + "\n" + BOSTON_ROW + "\n")
    x, y = load_boston(path)
    assert x.shape == (2, 13) and y.tolist() == [24.0, 24.0]


@pytest.mark.parametrize(
    "text, match",
    [
        (BOSTON_HEADER.replace("medv", "price") + "\n" + BOSTON_ROW, "unexpected header"),
        (
            BOSTON_HEADER + "\n" + BOSTON_ROW.rsplit(",", 1)[0],
            r"line 2: expected 14 comma-separated numbers, got 13",
        ),
        (
            BOSTON_HEADER + "\n" + BOSTON_ROW.replace("18", "eighteen"),
            r"line 2, column \d+: 'eighteen' is not a number",
        ),
        (BOSTON_HEADER + "\n" + BOSTON_ROW.replace("18", "nan"), "line 2: missing"),
        (BOSTON_HEADER + "\n", "no data rows"),
        (BOSTON_HEADER + "\n" + BOSTON_ROW + "\n" + BOSTON_ROW + ",1", "line 3: expected 14"),
        (
            BOSTON_HEADER + "\n# a comment\n\n" + BOSTON_ROW.replace("18", "1e40"),
            "line 4: a value too large for float32",
        ),
        (BOSTON_HEADER + "\n" + BOSTON_ROW.replace("18", "inf"), "line 2: missing"),
    ],
    ids=["header", "13-columns", "word", "nan", "no-rows", "ragged", "1e40", "inf"],
)
def test_boston_errors(tmp_path, text, match):
    path = tmp_path / "b.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"load_boston: .*{match}") as info:
        load_boston(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "text, match",
    [
        (CAL_ROW.replace(",126,", ",0,"), "line 1: households must be positive"),
        ("longitude,latitude\n" + CAL_ROW, "unexpected header"),
        (CAL_ROW + ",1", r"line 1: expected 9 comma-separated numbers, got 10"),
        (
            "\n" + CAL_ROW + "\n" + CAL_ROW.replace("880", "1e41"),
            "line 3: a value too large for float32",
        ),
    ],
)
def test_california_errors(tmp_path, text, match):
    path = tmp_path / "c.data"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"load_california_housing: .*{match}"):
        load_california_housing(path)


def test_missing_file_and_bad_path_type(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_boston(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError):
        load_california_housing(tmp_path)  # folder without cal_housing.data
    with pytest.raises(TypeError, match="load_boston: path must be a str or os.PathLike"):
        load_boston(3)
    with pytest.raises(TypeError, match="load_boston: dtype must be float32 or float64"):
        load_boston(tmp_path, dtype=np.int64)


def test_default_path_is_fastdl_data(shared_data_file, monkeypatch, tmp_path):
    """Without a path both loaders read $FASTDL_DATA/<folder>/<file>, as load_mnist does;
    without FASTDL_DATA they say what to do."""
    boston = shared_data_file("boston/BostonHousing.csv")
    monkeypatch.setenv("FASTDL_DATA", str(boston.parent.parent))
    x, y = load_boston()
    np.testing.assert_array_equal(x, load_boston(boston)[0])
    x64, y64 = load_boston(dtype=np.float64)
    assert x64.dtype == y64.dtype == np.float64
    assert float(x64[0, 0]) == 0.00632 != float(x[0, 0])  # float64 keeps the file's numbers
    assert load_california_housing()[0].shape == (20640, 8)
    monkeypatch.setenv("FASTDL_DATA", str(tmp_path))  # a folder without the files
    with pytest.raises(FileNotFoundError):
        load_boston()
    monkeypatch.delenv("FASTDL_DATA")
    for loader in (load_boston, load_california_housing):
        with pytest.raises(FileNotFoundError, match="no path given and FASTDL_DATA is not set"):
            loader()
