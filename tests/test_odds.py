"""Eq. 1 odds per class (pan.bias.odds), and Table 3 from them, by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import runs_from

from pan.bias.logits import Logits
from pan.bias.odds import ODDS_SCHEMA, ODDS_VARIANTS, class_odds, odds_table, softmax
from pan.bias.variants import VARIANTS

TESTS = Path(__file__).parent


# --- odds and Table 3, by hand ----------------------------------------------------------------


LOG3 = math.log(3)


def test_softmax_is_float64_and_stable():
    probs = softmax(np.array([[0.0, LOG3], [1000.0, 1000.0]], dtype=np.float32))
    assert probs.dtype == np.float64
    np.testing.assert_allclose(probs, [[0.25, 0.75], [0.5, 0.5]], rtol=1e-7)


def test_odds_by_hand():
    # original: softmax (1/2, 1/2) twice, sums (1, 1); variant: (3/4, 1/4) and (1/2, 1/2), sums (5/4, 3/4).
    original = np.zeros((2, 2))
    variant = np.array([[LOG3, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(class_odds(original, variant), [1.25, 0.75], rtol=1e-6)


def test_odds_table_columns_and_values():
    # Three classes; original gives (1/3, 1/3, 1/3) per image; sums over 2 images: 2/3 each.
    # pan: (3/5, 1/5, 1/5) and (1/3, 1/3, 1/3) -> sums (14/15, 8/15, 8/15) -> odds (1.4, 0.8, 0.8).
    runs = runs_from(
        {
            "original": [[0, 0, 0], [0, 0, 0]],
            "pan_reflect": [[LOG3, 0, 0], [0, 0, 0]],
            "rand_reflect": [[0, 0, 0], [0, 0, 0]],
            "reflect": [[0, 0, LOG3], [0, 0, LOG3]],  # (1/5, 1/5, 3/5) twice -> odds (0.6, 0.6, 1.8)
        }
    )
    table = odds_table(runs)
    assert (
        table.columns
        == [
            "class_index",
            "class_name",
            "odds_pan_reflect",
            "log_odds_pan_reflect",
            "odds_rand_reflect",
            "log_odds_rand_reflect",
            "odds_reflect",
            "log_odds_reflect",
        ]
        == list(ODDS_SCHEMA)
    )
    assert table["class_name"].to_list() == ["x", "y", "z"]
    np.testing.assert_allclose(table["odds_pan_reflect"], [1.4, 0.8, 0.8], rtol=1e-6)
    np.testing.assert_allclose(table["log_odds_pan_reflect"], np.log([1.4, 0.8, 0.8]), rtol=1e-6)
    np.testing.assert_allclose(table["odds_rand_reflect"], [1, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(table["odds_reflect"], [0.6, 0.6, 1.8], rtol=1e-6)


def test_odds_need_the_same_images():
    runs = runs_from({v: [[0, 0, 0]] for v in VARIANTS})
    runs["reflect"] = Logits("m", "reflect", ["other"], None, np.zeros((1, 3), np.float32), None)
    with pytest.raises(ValueError, match="other images"):
        odds_table(runs)


def test_a_one_class_model_is_refused_rather_than_given_odds_of_one():
    runs = runs_from({v: [[0.3], [1.2]] for v in ("original", *ODDS_VARIANTS)}, categories=("only",))
    with pytest.raises(ValueError, match="1 output class: its softmax is 1 for every image"):
        odds_table(runs)
