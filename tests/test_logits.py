"""The on-disk format of a variant's outputs (pan.bias.logits)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pan.bias.logits import LogitWriter, read_logits

TESTS = Path(__file__).parent


# --- logits on disk ---------------------------------------------------------------------------


def test_logit_files_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(5, 3)).astype(np.float32)
    with LogitWriter(tmp_path / "v.parquet", "m", "pan_reflect", 3, ["x", "y", "z"]) as writer:
        writer.write(0, ["i0", "i1"], ["y", "x"], [1, 0], ["y", "x"], values[:2])
        writer.write(2, ["i2", "i3", "i4"], ["z", "z", "x"], [2, 2, 0], ["z", "z", "x"], values[2:])
    run = read_logits(tmp_path / "v.parquet")
    assert (run.model, run.variant, run.ids, run.categories) == (
        "m",
        "pan_reflect",
        [f"i{i}" for i in range(5)],
        ["x", "y", "z"],
    )
    assert run.class_index.tolist() == [1, 0, 2, 2, 0]
    np.testing.assert_array_equal(run.logits, values)
    with LogitWriter(tmp_path / "u.parquet", "m", "original", 3, None) as writer:
        writer.write(0, ["i0"], [None], [None], [None], values[:1])
    unlabelled = read_logits(tmp_path / "u.parquet")
    assert unlabelled.class_index is None and unlabelled.categories is None
