"""KS, KS+ and KS- equal scipy.stats.ks_2samp on random, tied and constant samples."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from pan.core.borders import border_samples, centre_samples, region_masks
from pan.core.ks import SortedSamples, border_ks, share_size

TOLERANCE = 1e-12
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy p-value warnings


def scipy_reference(border: np.ndarray, centre: np.ndarray) -> tuple[float, float, float]:
    """The paper's per-neuron computation, straight from the definitions."""
    k = min(len(border), len(centre))
    ordered = np.sort(centre)
    return (
        stats.ks_2samp(border, centre).statistic,
        stats.ks_2samp(border, ordered[-k:], alternative="less").statistic,
        stats.ks_2samp(border, ordered[:k], alternative="greater").statistic,
    )


def share_reference(border: np.ndarray, centre: np.ndarray, q: float) -> tuple[float, float]:
    """The share rule's KS+ and KS-: against the top/bottom ``round(q * n)`` centre values."""
    m = max(1, round(q * len(centre)))
    ordered = np.sort(centre)
    return (
        stats.ks_2samp(border, ordered[-m:], alternative="less").statistic,
        stats.ks_2samp(border, ordered[:m], alternative="greater").statistic,
    )


def assert_matches_scipy(border: np.ndarray, centre: np.ndarray, q: float = 0.1) -> None:
    result = border_ks(border, centre, q)
    assert result.n_q == share_size(centre.shape[1], q)
    for neuron in range(border.shape[0]):
        expected = scipy_reference(border[neuron], centre[neuron]) + share_reference(
            border[neuron], centre[neuron], q
        )
        got = (
            result.ks[neuron],
            result.ks_plus[neuron],
            result.ks_minus[neuron],
            result.ks_plus_q[neuron],
            result.ks_minus_q[neuron],
        )
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE, err_msg=f"neuron {neuron}")


def samples(values: st.SearchStrategy, max_neurons: int = 4, max_size: int = 60):
    """(neurons, border values) and (neurons, centre values) arrays drawn from ``values``."""
    return st.integers(1, max_neurons).flatmap(
        lambda neurons: st.tuples(
            arrays(np.float32, st.tuples(st.just(neurons), st.integers(1, max_size)), elements=values),
            arrays(np.float32, st.tuples(st.just(neurons), st.integers(1, 3 * max_size)), elements=values),
        )
    )


finite = st.floats(-1e6, 1e6, width=32, allow_subnormal=False)
tied = st.sampled_from([-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0])


@settings(max_examples=200, deadline=None)
@given(samples(finite))
def test_random_samples_match_scipy(pair):
    assert_matches_scipy(*pair)


@settings(max_examples=60, deadline=None)
@given(samples(finite), st.sampled_from([0.004, 0.01, 0.3, 1.0]))
def test_the_share_rule_at_any_q_matches_scipy(pair, q):
    assert_matches_scipy(*pair, q=q)


def test_the_paper_statistics_do_not_depend_on_q():
    rng = np.random.default_rng(4)
    border, centre = rng.normal(size=(3, 30)).astype(np.float32), rng.normal(size=(3, 400)).astype(np.float32)
    a, b = border_ks(border, centre), border_ks(border, centre, 0.05)
    assert a.ks_plus_q is None and a.n_q == 0 and b.n_q == 20
    for name in ("ks", "ks_plus", "ks_minus"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()  # bit for bit


@settings(max_examples=200, deadline=None)
@given(samples(tied))
def test_tied_samples_match_scipy(pair):
    assert_matches_scipy(*pair)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 120),
    st.floats(-5, 5, width=32),
    st.sampled_from(["same", "other", "mixed"]),
)
def test_constant_samples_match_scipy(n_border, n_centre, value, centre_kind):
    border = np.full((2, n_border), value, dtype=np.float32)
    centre = {
        "same": np.full((2, n_centre), value, dtype=np.float32),
        "other": np.full((2, n_centre), value + 1, dtype=np.float32),
        "mixed": np.resize(np.array([value - 1, value, value + 1], dtype=np.float32), (2, n_centre)),
    }[centre_kind]
    assert_matches_scipy(border, centre)


def test_float32_exact_inputs_of_other_dtypes_are_accepted_and_inexact_ones_rejected():
    rng = np.random.default_rng(1)
    assert_matches_scipy(rng.integers(-3, 3, (3, 50)), rng.integers(-3, 3, (3, 400)))
    with pytest.raises(TypeError, match="float32"):
        border_ks(np.array([[1.0 + 1e-12]]), np.array([[1.0, 2.0]]))


def test_large_layer_scored_at_once_matches_scipy_per_neuron():
    rng = np.random.default_rng(2)
    maps = rng.normal(size=(8, 16, 12, 12)).astype(np.float32)
    maps[:, 3, 0, :] -= 20  # a neuron whose top row lies below everything else
    centre = SortedSamples(centre_samples(maps))
    for name, border in border_samples(maps).items():
        result = border_ks(border, centre)
        for neuron in (0, 3, 15):
            expected = scipy_reference(border[neuron], centre_samples(maps)[neuron])
            got = (result.ks[neuron], result.ks_plus[neuron], result.ks_minus[neuron])
            np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE, err_msg=f"{name} {neuron}")
    top = border_ks(border_samples(maps)["T"], centre)
    assert top.ks[3] == 1.0 and top.ks_minus[3] == 1.0 and top.ks_plus[3] == 0.0


def test_regions_cover_the_map_with_corner_overlap():
    masks = region_masks(5, 7)
    assert masks["T"].sum() == 7 and masks["L"].sum() == 5 and masks["centre"].sum() == 3 * 5
    borders = masks["T"] | masks["B"] | masks["L"] | masks["R"]
    assert not (borders & masks["centre"]).any() and (borders | masks["centre"]).all()
    maps = np.arange(2 * 1 * 5 * 7, dtype=np.float32).reshape(2, 1, 5, 7)
    for name, values in border_samples(maps).items():
        np.testing.assert_array_equal(values[0], np.concatenate([m[0][masks[name]] for m in maps]))
    np.testing.assert_array_equal(
        centre_samples(maps)[0], np.concatenate([m[0][masks["centre"]] for m in maps])
    )


def test_empty_centre_gives_nan_and_nan_input_is_rejected():
    maps = np.zeros((2, 3, 2, 2), dtype=np.float32)
    result = border_ks(border_samples(maps)["T"], centre_samples(maps))
    assert np.isnan(result.ks).all() and result.n_centre == 0
    with pytest.raises(ValueError, match="NaN"):
        border_ks(np.array([[np.nan, 1.0]]), np.array([[1.0, 2.0]]))


@pytest.mark.parametrize("images", [1, 3])
def test_scoring_a_layer_sorts_copies_never_the_maps(images):
    from pan.core.scoring import score_maps

    maps = np.random.default_rng(3).normal(size=(images, 3, 5, 6)).astype(np.float32)
    before = maps.copy()
    table = score_maps(maps, "layer", 0)
    np.testing.assert_array_equal(maps, before)
    assert table.num_rows == 3 * 4 and table.column("border").to_pylist()[:4] == ["T", "B", "L", "R"]


def test_layer_scored_in_cache_sized_chunks_matches_scipy(monkeypatch):
    import pan.core.chunks
    import pan.core.scoring

    rng = np.random.default_rng(4)
    maps = np.round(rng.normal(size=(3, 7, 6, 5)), 1).astype(np.float32)  # ties within and across regions
    monkeypatch.setattr(pan.core.chunks, "CHUNK_VALUES", 2 * 3 * 4 * 3)  # two neurons a chunk, one left
    table = pan.core.scoring.score_maps(maps, "layer", 0)
    centre = centre_samples(maps)
    for row in table.to_pylist():
        border = border_samples(maps)[row["border"]][row["neuron"]]
        expected = scipy_reference(border, centre[row["neuron"]])
        got = (row["ks"], row["ks_plus"], row["ks_minus"])
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE, err_msg=str(row))


def test_layer_scored_by_a_thread_pool_matches_one_thread(monkeypatch):
    import pan.core.chunks
    import pan.core.scoring

    maps = np.round(np.random.default_rng(5).normal(size=(2, 9, 6, 7)), 1).astype(np.float32)
    monkeypatch.setattr(pan.core.chunks, "CHUNK_VALUES", 2 * 4 * 5 * 2)  # two neurons per chunk
    one = pan.core.scoring.score_maps(maps, "layer", 0, threads=1)
    assert one.equals(pan.core.scoring.score_maps(maps, "layer", 0, threads=2))
    assert one.equals(pan.core.scoring.score_maps(maps, "layer", 0, threads=3))


def test_borders_searched_in_groups_on_threads_equal_one_search(monkeypatch):
    """Groups of neurons, cache-sized and on several threads (the firing and reach jobs): the
    same statistics, both rules, to the bit, whatever the group sizes (7 neurons in groups of
    2 on one thread, on 2 and on 3 threads)."""
    import pan.core.chunks
    from pan.core.ks import borders_ks

    rng = np.random.default_rng(6)
    centre = SortedSamples(np.round(rng.normal(size=(7, 300)), 1).astype(np.float32))
    borders = [SortedSamples(np.round(rng.normal(size=(7, n)), 1).astype(np.float32)) for n in (20, 5, 40)]
    one = borders_ks(borders, centre, q=0.05)
    monkeypatch.setattr(pan.core.chunks, "CHUNK_VALUES", 2 * 300)  # two neurons per group
    for threads in (1, 2, 3):
        for got, want in zip(borders_ks(borders, centre, q=0.05, threads=threads), one, strict=True):
            for name in ("ks", "ks_plus", "ks_minus", "ks_plus_q", "ks_minus_q"):
                assert np.array_equal(getattr(got, name), getattr(want, name)), (threads, name)
            assert (got.n_border, got.n_centre, got.n_q) == (want.n_border, want.n_centre, want.n_q)


# The torch path (pan.ks_torch, for GPUs), run on the CPU: the same statistics bit for bit.


def assert_torch_matches_numpy(border: np.ndarray, centre: np.ndarray) -> None:
    from pan.ks_torch import borders_ks as torch_borders_ks

    before = border.copy(), centre.copy()
    expected = border_ks(border, centre)
    (got,) = torch_borders_ks([border], centre, device="cpu")
    for name in ("ks", "ks_plus", "ks_minus"):
        want, have = getattr(expected, name), getattr(got, name)
        assert have.dtype == np.float64 and np.array_equal(have, want, equal_nan=True), name
        assert np.array_equal(np.signbit(have), np.signbit(want)), f"{name}: sign of a zero"
    assert (got.n_border, got.n_centre) == (expected.n_border, expected.n_centre)
    np.testing.assert_array_equal(border, before[0])
    np.testing.assert_array_equal(centre, before[1])


@settings(max_examples=150, deadline=None)
@given(samples(finite))
def test_torch_random_samples_match_numpy(pair):
    assert_torch_matches_numpy(*pair)


@settings(max_examples=150, deadline=None)
@given(samples(tied))
def test_torch_tied_samples_match_numpy(pair):
    assert_torch_matches_numpy(*pair)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 120),
    st.floats(-5, 5, width=32),
    st.sampled_from(["same", "other", "mixed", "signed zeros"]),
)
def test_torch_constant_samples_match_numpy(n_border, n_centre, value, centre_kind):
    border = np.full((2, n_border), value, dtype=np.float32)
    centre = {
        "same": np.full((2, n_centre), value, dtype=np.float32),
        "other": np.full((2, n_centre), value + 1, dtype=np.float32),
        "mixed": np.resize(np.array([value - 1, value, value + 1], dtype=np.float32), (2, n_centre)),
        "signed zeros": np.resize(np.array([-0.0, 0.0], dtype=np.float32), (2, n_centre)),
    }[centre_kind]
    assert_torch_matches_numpy(border, centre)
    assert_torch_matches_numpy(-np.zeros_like(border), centre)


def test_torch_rejects_what_numpy_rejects():
    from pan.ks_torch import borders_ks as torch_borders_ks

    with pytest.raises(TypeError, match="float32"):
        torch_borders_ks([np.array([[1.0 + 1e-12]])], np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="NaN"):
        torch_borders_ks([np.array([[np.nan, 1.0]], dtype=np.float32)], np.array([[1.0, 2.0]]))
    (empty,) = torch_borders_ks([np.zeros((3, 4), np.float32)], np.zeros((3, 0), np.float32))
    assert np.isnan(empty.ks).all() and empty.n_centre == 0


@pytest.mark.parametrize("budget", [1, 2000, None])  # one neuron per chunk, a few, the whole layer
def test_torch_layer_scoring_equals_the_numpy_table(budget):
    from pan.core.scoring import score_maps

    rng = np.random.default_rng(6)
    maps = np.round(rng.normal(size=(3, 7, 6, 5)), 1).astype(np.float32)
    maps[:, 2] = 0.0
    maps[0, 2, 0, :] = -0.0
    maps[:, 4] = np.abs(maps[:, 4])  # a non-negative neuron, like a ReLU's
    before = maps.copy()
    expected = score_maps(maps, "layer", 3)
    got = score_maps(maps, "layer", 3, device="torch-cpu", memory_bytes=budget)
    assert got.equals(expected)
    np.testing.assert_array_equal(maps, before)
    for name in ("ks", "ks_plus", "ks_minus"):
        assert np.array_equal(
            np.signbit(got.column(name).to_numpy()), np.signbit(expected.column(name).to_numpy())
        )


def test_cpu_scoring_imports_no_torch(tmp_path):
    import subprocess
    import sys

    script = (
        "import sys, numpy as np\n"
        "from pan.core.scoring import score_maps\n"
        "maps = np.random.default_rng(0).normal(size=(2, 3, 5, 5)).astype(np.float32)\n"
        "score_maps(maps, 'l', 0, device='cpu')\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_unknown_or_missing_devices_are_refused():
    import torch

    from pan.core.scoring import resolve_device

    with pytest.raises(ValueError, match="device"):
        resolve_device("gpu")
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            resolve_device("cuda")


def test_long_rows_get_the_keys_of_short_ones(monkeypatch):
    """Centres of ``_ROW_LOOP`` values and more get their keys row by row: the same keys."""
    import pan.core.ks

    rng = np.random.default_rng(7)
    rows = []
    for scale in (1.0, 1e-20, 1e-39):  # tiny negatives: flipped bits read as NaN floats
        negatives = -rng.random(3000) * scale
        zeros = np.r_[np.zeros(40), -np.zeros(40)]
        rows.append(rng.permutation(np.r_[negatives, zeros, rng.random(pan.core.ks._ROW_LOOP)]))
    values = np.array(rows, dtype=np.float32)
    long_rows = SortedSamples(values).keys
    monkeypatch.setattr(pan.core.ks, "_ROW_LOOP", values.shape[1] + 1)
    short_rows = SortedSamples(values).keys
    np.testing.assert_array_equal(long_rows, short_rows)
    assert (np.diff(long_rows, axis=1) >= 0).all()
    border = values[:, ::50].copy()
    assert_matches_scipy(border, values)


def test_samples_from_sorted_rows_have_the_keys_of_a_fresh_sort():
    values = np.random.default_rng(3).normal(size=(5, 40)).astype(np.float32)
    values[:, :10] = 0.0  # ties, -0.0 included
    values[0, 3] = -0.0
    ordered = np.sort(values, axis=1)
    kept = ordered.copy()
    assert np.array_equal(SortedSamples.from_sorted(ordered).keys, SortedSamples(values).keys)
    assert np.array_equal(ordered, kept)  # left unchanged


def test_an_empty_border_is_refused():
    with pytest.raises(ValueError, match="border sample is empty"):
        border_ks(np.zeros((3, 0), np.float32), np.zeros((3, 5), np.float32))
