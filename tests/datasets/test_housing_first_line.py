"""The first line of a housing file: a header only if it is not numbers."""

import numpy as np
import pytest

from fastdl.datasets import load_boston, load_california_housing

CAL_ROW = "-1.2223e+02,37.88,41.0,880.0,129.0,322.0,126.0,8.3252,452600.0"


def test_scientific_notation_in_the_first_row_is_data(tmp_path):
    path = tmp_path / "cal_housing.data"
    path.write_text(CAL_ROW + "\n" + CAL_ROW.replace("41.0", "21.0") + "\n")
    x, y = load_california_housing(path)
    assert x.shape == (2, 8) and y.shape == (2,)


def test_a_byte_order_mark_before_the_data_is_ignored(tmp_path):
    path = tmp_path / "cal_housing.data"
    path.write_bytes(b"\xef\xbb\xbf" + (CAL_ROW + "\n").encode())
    x, _ = load_california_housing(path)
    assert x.shape == (1, 8)


def test_nan_in_the_first_row_is_reported_as_a_missing_value(tmp_path):
    path = tmp_path / "cal_housing.data"
    path.write_text(CAL_ROW.replace("37.88", "nan") + "\n")
    with pytest.raises(ValueError) as error:
        load_california_housing(path)
    assert "header" not in str(error.value)


def test_boston_headerless_with_scientific_notation(tmp_path):
    row = "6.32e-03,18,2.31,0,0.538,6.575,65.2,4.09,1,296,15.3,396.9,4.98,24"
    path = tmp_path / "BostonHousing.csv"
    path.write_text(row + "\n" + row + "\n")
    x, y = load_boston(path)
    assert x.shape == (2, 13) and np.allclose(y, 24)


def test_standardize_works_in_float64_on_float32_input():
    """Large offsets: float32 arithmetic would round the deviations away (error ~3e-3)."""
    from fastdl.datasets import standardize

    x = np.random.default_rng(0).normal(1e5, 1.0, (1000, 3))
    (got,) = standardize(x.astype(np.float32), axis=0)
    x32 = x.astype(np.float32).astype(np.float64)
    expected = (x32 - x32.mean(axis=0)) / x32.std(axis=0)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_errors_name_the_file_line_past_blank_and_comment_lines(tmp_path):
    path = tmp_path / "cal_housing.data"
    rows = [CAL_ROW, "", "# a comment", CAL_ROW, CAL_ROW.replace("37.88", "inf")]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"line 5: missing \(nan\) or infinite value"):
        load_california_housing(path)
    rows[-1] = CAL_ROW.replace("126.0", "0.0")  # households
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"line 5: households must be positive"):
        load_california_housing(path)
