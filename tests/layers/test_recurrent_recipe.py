"""The character-level LSTM recipe runs end to end on a small text (smoke run)."""

from __future__ import annotations

import numpy as np

from fastdl.recipes import char_lstm


def test_char_lstm_smoke_run(tmp_path, capsys):
    text = "To be, or not to be, that is the question:\n" * 40
    path = tmp_path / "tiny.txt"
    path.write_text(text)
    result = char_lstm.main(
        [str(path), "--smoke", "1", "--hidden", "16", "--batch-size", "4", "--seq-len", "8",
         "--eval-every", "0.3", "--sample-chars", "30", "--prime", "To ", "--seed", "3"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "train" in out and "val" in out and "--- sample" in out
    assert result["curve"], "no evaluation was printed"
    for row in result["curve"]:
        assert np.isfinite(row["train"]) and np.isfinite(row["val"])
    assert result["curve"][-1]["val"] < np.log(len(set(text)))  # better than uniform guessing
    assert result["sample"].startswith("To ") and len(result["sample"]) == 33
    assert set(result["sample"]) <= set(text)
