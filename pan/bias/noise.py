"""§4 with a noise model: how many classes PAN-reflect moves beyond what any perturbation of its
size moves, and beyond resampling the images.

Readings per variant ``v`` against ``original`` on the same ``N`` images (softmax ``p``, float64):

- ``kl_mean``: mean over images of ``KL(p_original || p_v)`` (nats), with an image-bootstrap
  interval: the size of the perturbation;
- ``beyond``: the paper's count, classes whose odds (Eq. 1) move beyond ``threshold``;
- ``beyond_mass``: the same among the classes that carry real probability mass, summed
  original softmax ``>= min_mass`` (in images' worth: ``min_mass=1`` is one image's full
  probability spread over the set); odds of a class the model never predicts are noise;
- ``counted``: of those, the classes whose image-bootstrap interval of the odds
  (:data:`CONFIDENCE`, percentile, ``bootstrap`` resamples of the images) also excludes 1.

The null family (:mod:`pan.bias.noise_family`: RAND-reflect redrawn, larger random channel sets,
weight noise) draws each count against ``log(kl_mean)``; a least-squares line through it gives the
count a random perturbation of PAN-reflect's KL reaches. PAN-reflect's **excess** over that line is
the PAN-specific effect, with a :data:`CONFIDENCE` prediction interval of the line (the spread of
the null members around it: ``t * s * sqrt(1 + 1/n + (x0 - mean x)^2 / Sxx)``).
``inside_null_range`` says whether PAN-reflect's KL lies within the null's (no extrapolation).

The **sampling-noise floor**: the original model against itself on two disjoint random halves
of the images (``splits`` seeded splits, odds ``sum_A p / sum_B p``), counted the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from pan.bias.noise_family import NoiseVariant, read_noise_logits
from pan.bias.odds import DEFAULT_ODDS_THRESHOLD, check_same_images, read_runs

__all__ = [
    "CONFIDENCE",
    "COUNTS",
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_MIN_MASS",
    "DEFAULT_SPLITS",
    "TABLE3_NOISE_SCHEMA",
    "bootstrap_weights",
    "image_kl",
    "log_softmax",
    "matched_excess",
    "noise_floor",
    "noise_readings",
    "read_noise_variants",
    "table3_noise",
    "variant_readings",
    "write_noise_readings",
    "write_table3_noise",
]

DEFAULT_MIN_MASS = 1.0
"""A class counts only when the original's softmax summed over the images reaches this (images' worth)."""
DEFAULT_BOOTSTRAP = 1000
"""Image-bootstrap resamples for the per-class odds and KL intervals."""
DEFAULT_SPLITS = 20
"""Seeded splits of the images into two disjoint halves for the sampling-noise floor."""
CONFIDENCE = 0.95
COUNTS: tuple[str, ...] = ("beyond", "beyond_mass", "counted")
"""The three class counts, from the paper's to the one that needs mass and a clear interval."""
_CHUNK = 100
"""Bootstrap resamples per matrix product (bounds memory at ``_CHUNK x images``)."""
_FLOOR_BOOTSTRAP = 400
"""At most this many resamples per half in each of the floor's splits."""


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def image_kl(original: np.ndarray, variant: np.ndarray) -> np.ndarray:
    """Per image ``KL(softmax(original) || softmax(variant))`` in nats, from logits."""
    lp, lq = log_softmax(original), log_softmax(variant)
    return (np.exp(lp) * (lp - lq)).sum(axis=1)


def bootstrap_weights(images: int, replicates: int, seed: int) -> np.ndarray:
    """``(replicates, images)`` multinomial counts: how often each image is drawn in each resample."""
    rng = np.random.default_rng([seed, images, 1])
    return rng.multinomial(images, np.full(images, 1 / images), size=replicates).astype(np.float64)


def _interval(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tail = 100 * (1 - CONFIDENCE) / 2
    return np.percentile(samples, tail, axis=0), np.percentile(samples, 100 - tail, axis=0)


def _resampled_sums(weights: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """``(replicates, classes)`` summed probabilities of each bootstrap resample."""
    return np.concatenate(
        [weights[start : start + _CHUNK] @ probabilities for start in range(0, len(weights), _CHUNK)]
    )


def _beyond(odds: np.ndarray, threshold: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (odds > 1 + threshold) | (1 / odds > 1 + threshold)


def _counts(odds, low, high, massive: np.ndarray, threshold: float) -> dict[str, int]:
    beyond = _beyond(odds, threshold)
    clear = (low > 1) | (high < 1)
    return {
        "beyond": int(beyond.sum()),
        "beyond_mass": int((beyond & massive).sum()),
        "counted": int((beyond & massive & clear).sum()),
    }


def variant_readings(
    original: np.ndarray,
    variant: np.ndarray,
    weights: np.ndarray,
    massive: np.ndarray,
    threshold: float,
    original_sums: np.ndarray | None = None,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """KL with its interval and the three counts of one variant (logits ``(images, classes)``),
    and its per-class ``odds``, ``low``, ``high`` and ``counted``. ``original_sums`` are the
    original's resampled sums (:func:`_resampled_sums`), computed here when not given."""
    p0, pv = np.exp(log_softmax(original)), np.exp(log_softmax(variant))
    if original_sums is None:
        original_sums = _resampled_sums(weights, p0)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = pv.sum(axis=0) / p0.sum(axis=0)
        low, high = _interval(_resampled_sums(weights, pv) / original_sums)
    kl = image_kl(original, variant)
    kl_low, kl_high = _interval(weights @ kl / len(kl))
    counts = _counts(odds, low, high, massive, threshold)
    readings = {"kl_mean": float(kl.mean()), "kl_low": float(kl_low), "kl_high": float(kl_high), **counts}
    clear = (low > 1) | (high < 1)
    per_class = {
        "odds": odds,
        "low": low,
        "high": high,
        "counted": _beyond(odds, threshold) & massive & clear,
    }
    return readings, per_class


def noise_floor(
    original: np.ndarray,
    massive: np.ndarray,
    threshold: float,
    splits: int = DEFAULT_SPLITS,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> list[dict[str, int]]:
    """The three counts of the original against itself on two disjoint random halves, per split."""
    p0 = np.exp(log_softmax(original))
    half = len(p0) // 2
    if half < 2:
        raise ValueError(f"the sampling-noise floor needs at least 4 images, got {len(p0)}")
    rng = np.random.default_rng([seed, len(p0), 2])
    rows = []
    for _ in range(splits):
        order = rng.permutation(len(p0))
        a, b = p0[order[:half]], p0[order[half : 2 * half]]
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = a.sum(axis=0) / b.sum(axis=0)
        wa, wb = (
            rng.multinomial(half, np.full(half, 1 / half), size=bootstrap).astype(np.float64)
            for _ in range(2)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            low, high = _interval(_resampled_sums(wa, a) / _resampled_sums(wb, b))
        rows.append(_counts(odds, low, high, massive, threshold))
    return rows


def matched_excess(null_kl: np.ndarray, null_count: np.ndarray, kl: float, count: float) -> dict[str, float]:
    """``count`` at ``kl`` against the least-squares line of ``null_count`` on ``log(null_kl)``:
    the line's value there (``null``), the ``excess`` and its prediction interval."""
    keep = np.asarray(null_kl) > 0
    x, y = np.log(np.asarray(null_kl)[keep]), np.asarray(null_count, dtype=np.float64)[keep]
    nan = {"null": np.nan, "excess": np.nan, "excess_low": np.nan, "excess_high": np.nan}
    if len(x) < 3 or np.ptp(x) == 0 or not kl > 0:
        return nan
    from scipy import stats  # here: the config imports this module's defaults

    slope, intercept = np.polyfit(x, y, 1)
    x0 = np.log(kl)
    predicted = intercept + slope * x0
    residual = y - (intercept + slope * x)
    s = np.sqrt((residual**2).sum() / (len(x) - 2))
    sxx = ((x - x.mean()) ** 2).sum()
    half = (
        stats.t.ppf(0.5 + CONFIDENCE / 2, len(x) - 2)
        * s
        * np.sqrt(1 + 1 / len(x) + (x0 - x.mean()) ** 2 / sxx)
    )
    excess = count - predicted
    return {"null": predicted, "excess": excess, "excess_low": excess - half, "excess_high": excess + half}


VARIANTS_SCHEMA = {
    "variant": pl.String,
    "family": pl.String,
    "scale": pl.Float64,
    "seed": pl.Int64,
    "kl_mean": pl.Float64,
    "kl_low": pl.Float64,
    "kl_high": pl.Float64,
    **{count: pl.Int64 for count in COUNTS},
    "massive_classes": pl.Int64,
}
"""Columns of ``results/noise/{model}/variants.csv``; family ``halves`` rows are the floor's
splits; ``massive_classes`` is how many classes reach ``min_mass`` (the classes of the last two counts)."""
MAIN_VARIANTS: tuple[str, ...] = ("pan_reflect", "rand_reflect", "reflect")


def noise_readings(
    runs: Mapping[str, object],
    family: Sequence[NoiseVariant],
    family_logits: Mapping[str, np.ndarray],
    rand_seed: int = 0,
    threshold: float = DEFAULT_ODDS_THRESHOLD,
    min_mass: float = DEFAULT_MIN_MASS,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    splits: int = DEFAULT_SPLITS,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per variant (:data:`VARIANTS_SCHEMA`) and per class (mass, and odds, interval and
    ``counted`` of :data:`MAIN_VARIANTS`) readings of one model; ``runs`` are its four §4 logits
    (:func:`pan.bias.odds.read_runs`), ``family_logits`` its null family's."""
    if not threshold > 0 or not min_mass >= 0 or bootstrap < 10:
        raise ValueError(
            f"need threshold > 0, min_mass >= 0, bootstrap >= 10; got {threshold}, {min_mass}, {bootstrap}"
        )
    missing = [v for v in ("original", *MAIN_VARIANTS) if v not in runs]
    if missing:
        raise ValueError(f"the noise model needs the logits of {missing}")
    check_same_images(runs)
    original = runs["original"].logits
    for name, logits in family_logits.items():
        if logits.shape != original.shape:
            raise ValueError(
                f"noise member {name!r} has logits {logits.shape}, the §4 variants {original.shape}"
            )
    mass = np.exp(log_softmax(original)).sum(axis=0)
    massive = mass >= min_mass
    weights = bootstrap_weights(len(original), bootstrap, rand_seed)
    original_sums = _resampled_sums(weights, np.exp(log_softmax(original)))
    rows, classes = [], {"class_index": np.arange(original.shape[1]), "mass": mass}
    members = [("pan_reflect", "pan_reflect", 1.0, rand_seed), ("reflect", "reflect", 1.0, rand_seed)]
    members.append(("rand_reflect", "rand_channels", 1.0, rand_seed))
    members += [(m.name, m.family, m.scale, m.seed) for m in family]
    for name, kind, scale, seed in members:
        logits = runs[name].logits if name in runs else family_logits[name]
        readings, per_class = variant_readings(original, logits, weights, massive, threshold, original_sums)
        rows.append({"variant": name, "family": kind, "scale": scale, "seed": seed, **readings})
        if name in MAIN_VARIANTS:
            for key, values in per_class.items():
                classes[f"{key}_{name}"] = values
    floor = noise_floor(original, massive, threshold, splits, min(bootstrap, _FLOOR_BOOTSTRAP), rand_seed)
    for split, counts in enumerate(floor):
        rows.append({"variant": f"halves_{split}", "family": "halves", "scale": 0.5, "seed": split, **counts})
    variants = pl.DataFrame(rows, schema_overrides=VARIANTS_SCHEMA).with_columns(
        massive_classes=pl.lit(int(massive.sum()), dtype=pl.Int64)
    )
    variants = variants.select(list(VARIANTS_SCHEMA))
    names = runs["original"].categories
    per_class = pl.DataFrame(classes).with_columns(
        class_name=pl.Series([names[c] if names else None for c in range(original.shape[1])], dtype=pl.String)
    )
    return variants, per_class.select("class_index", "class_name", pl.exclude("class_index", "class_name"))


def write_noise_readings(
    eval_files: Sequence[str | Path],
    noise_file: str | Path,
    variants_out: str | Path,
    classes_out: str | Path,
    **options,
) -> pl.DataFrame:
    """``results/noise/{model}/variants.csv`` and ``classes.csv`` from the §4 logits and the null family's."""
    family, logits = read_noise_logits(noise_file)
    variants, classes = noise_readings(read_runs(eval_files), family, logits, **options)
    variants.write_csv(variants_out)
    classes.write_csv(classes_out)
    return variants


def read_noise_variants(path: str | Path) -> pl.DataFrame:
    """A per-variant table written by :func:`write_noise_readings`, checked for its columns."""
    table = pl.read_csv(path, schema_overrides=VARIANTS_SCHEMA)
    missing = [c for c in VARIANTS_SCHEMA if c not in table.columns]
    if missing or "pan_reflect" not in table["variant"].to_list():
        raise ValueError(f"{path} is no noise-model table (missing {missing or 'the pan_reflect row'})")
    return table.select(list(VARIANTS_SCHEMA))


NULL_FAMILIES: tuple[str, ...] = ("rand_channels", "weight_noise")
TABLE3_NOISE_SCHEMA = {
    "model": pl.String,
    "count": pl.String,
    "pan_reflect": pl.Int64,
    "reflect": pl.Int64,
    "rand_reflect": pl.Int64,
    "massive_classes": pl.Int64,
    "rand_seeds": pl.Int64,
    "rand_median": pl.Float64,
    "rand_min": pl.Int64,
    "rand_max": pl.Int64,
    "pan_kl": pl.Float64,
    "rand_kl_median": pl.Float64,
    "null_members": pl.Int64,
    "null_at_pan_kl": pl.Float64,
    "excess": pl.Float64,
    "excess_low": pl.Float64,
    "excess_high": pl.Float64,
    "inside_null_range": pl.Boolean,
    "floor_mean": pl.Float64,
    "floor_max": pl.Int64,
}
"""Columns of ``results/tables/table3_noise.csv``: one row per model and count (:data:`COUNTS`)."""


def table3_noise(variants: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Per model and count: PAN-reflect, reflect, RAND-reflect and its seed distribution, the
    KL-matched null and PAN-reflect's excess over it (with its interval), and the floor."""
    rows = []
    for model, table in variants.items():
        by_name = {r["variant"]: r for r in table.iter_rows(named=True)}
        pan = by_name["pan_reflect"]
        rand = table.filter((pl.col("family") == "rand_channels") & (pl.col("scale") == 1))
        null = table.filter(pl.col("family").is_in(NULL_FAMILIES))
        floor = table.filter(pl.col("family") == "halves")
        null_kl = null["kl_mean"].to_numpy()
        for count in COUNTS:
            fit = matched_excess(null_kl, null[count].to_numpy(), pan["kl_mean"], pan[count])
            rows.append(
                {
                    "model": model,
                    "count": count,
                    "pan_reflect": pan[count],
                    "reflect": by_name["reflect"][count],
                    "rand_reflect": by_name["rand_reflect"][count],
                    "massive_classes": pan["massive_classes"],
                    "rand_seeds": rand.height,
                    "rand_median": float(rand[count].median()),
                    "rand_min": int(rand[count].min()),
                    "rand_max": int(rand[count].max()),
                    "pan_kl": pan["kl_mean"],
                    "rand_kl_median": float(rand["kl_mean"].median()),
                    "null_members": null.height,
                    "null_at_pan_kl": fit["null"],
                    "excess": fit["excess"],
                    "excess_low": fit["excess_low"],
                    "excess_high": fit["excess_high"],
                    "inside_null_range": bool(null_kl.min() <= pan["kl_mean"] <= null_kl.max()),
                    "floor_mean": float(floor[count].mean()) if floor.height else None,
                    "floor_max": int(floor[count].max()) if floor.height else None,
                }
            )
    return pl.DataFrame(rows, schema=TABLE3_NOISE_SCHEMA)


def write_table3_noise(variant_files: Mapping[str, str | Path], out: str | Path) -> pl.DataFrame:
    """``results/tables/table3_noise.csv`` from each model's ``results/noise/{model}/variants.csv``."""
    table = table3_noise({model: read_noise_variants(f) for model, f in variant_files.items()})
    table.write_csv(out)
    return table
