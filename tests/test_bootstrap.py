"""Image-bootstrap strengths equal the statistics of physically resampled maps (scipy's)."""

import numpy as np
import pytest
from scipy import stats

from pan.core import bootstrap
from pan.core.bootstrap import bootstrap_strengths, resample_weights, uncertainty_pass
from pan.core.borders import BORDERS, border_samples, centre_samples
from pan.core.ks import share_size

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy p-value warnings


def scipy_strengths(border: np.ndarray, centre: np.ndarray, q: float) -> tuple[float, float]:
    """Paper and share rule strengths min(KS, max(KS+, KS-)), straight from ks_2samp."""
    ordered = np.sort(centre)
    ks = stats.ks_2samp(border, centre).statistic
    out = []
    for m in (min(len(border), len(centre)), share_size(len(centre), q)):
        plus = stats.ks_2samp(border, ordered[-m:], alternative="less").statistic
        minus = stats.ks_2samp(border, ordered[:m], alternative="greater").statistic
        out.append(min(ks, max(plus, minus)))
    return out[0], out[1]


@pytest.mark.parametrize("way", ["plain", "grouped", "int64"])
@pytest.mark.parametrize("tied", [False, True])
def test_replicates_equal_scipy_on_resampled_images(tied, way, monkeypatch):
    if way == "grouped":  # neurons one at a time (a large layer's cache-sized groups)
        monkeypatch.setattr(bootstrap, "CHUNK_VALUES", 1)
    if way == "int64":  # the centre sums of a centre too large for int32
        monkeypatch.setattr(bootstrap, "_INT32_MAX", 0)
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(7, 3, 6, 7)).astype(np.float32)
    maps[:, 0, 0, :] += 1.5  # a top-row neuron
    if tied:
        maps = np.round(maps)  # many ties, and -0.0 with 0.0
    weights = resample_weights(7, 5, seed=1)
    got = bootstrap_strengths(maps, 0.1, weights)
    assert got.shape == (5, 2, 4, 3)
    for r, weight in enumerate(weights):
        resampled = maps[np.repeat(np.arange(7), weight)]
        borders, centre = border_samples(resampled), centre_samples(resampled)
        for b, border in enumerate(BORDERS):
            for neuron in range(3):
                expected = scipy_strengths(borders[border][neuron], centre[neuron], 0.1)
                np.testing.assert_allclose(got[r, :, b, neuron], expected, rtol=0, atol=1e-12)


def test_weights_are_seeded_image_draws():
    weights = resample_weights(16, 10, seed=0)
    assert weights.shape == (10, 16) and (weights.sum(axis=1) == 16).all()
    assert (weights == resample_weights(16, 10, seed=0)).all()
    assert not (weights == resample_weights(16, 10, seed=1)).all()
    assert resample_weights(16, 0, seed=0).shape == (0, 16)


def test_intervals_cover_the_point_strength_of_a_clear_pan_and_a_null_neuron():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(24, 2, 9, 9)).astype(np.float32)
    maps[:, 0, 0, :] += 4  # neuron 0: a clear T PAN
    intervals, interior = uncertainty_pass(maps, "conv", 0, 0.05, resample_weights(24, 30, seed=0), threads=2)
    lo, hi = intervals["strength_lo"].reshape(2, 4), intervals["strength_hi"].reshape(2, 4)
    assert lo[0, 0] > 0.8 and hi[1].max() < 0.5  # T of neuron 0 clears 0.5, neuron 1 never
    assert (lo <= hi).all()
    neuron_lo = intervals["neuron_strength_q_lo"].reshape(2, 4)
    assert (neuron_lo == neuron_lo[:, :1]).all()  # one neuron interval, on each of its rows
    assert interior.num_rows == 4 and interior.column("line").to_pylist() == ["row", "column"] * 2
