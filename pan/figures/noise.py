"""§4's noise model as a figure: classes beyond the threshold against the perturbation's KL.

Reads ``results/noise/{model}/variants.csv`` (:func:`pan.bias.noise.read_noise_variants`). One panel
per count (the paper's, with probability mass, and with mass and a clear interval): the null
family (RAND-reflect draws, larger random channel sets, weight noise) as points, its
least-squares line on log KL, PAN-reflect and reflect marked, and the sampling-noise floor
(the original on two disjoint halves of the images) as a band from its mean to its maximum.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import polars as pl

from pan.bias.noise import COUNTS, NULL_FAMILIES, read_noise_variants
from pan.figures.render import save_chart

__all__ = ["noise_curve_chart", "write_noise_curve"]

COUNT_TITLES = {
    "beyond": "classes beyond the threshold (paper)",
    "beyond_mass": "... with probability mass",
    "counted": "... and an interval excluding 1",
}
MEMBER_NAMES = {
    "rand_channels": "random channels",
    "weight_noise": "weight noise",
    "pan_reflect": "PAN-reflect",
    "reflect": "reflect",
}
MEMBER_COLOURS = ["#ff7f0e", "#9467bd", "#1f77b4", "#2ca02c"]


def _long(variants: pl.DataFrame) -> pl.DataFrame:
    members = variants.filter(pl.col("family") != "halves")
    return pl.concat(
        [
            members.select(
                "variant",
                "scale",
                "seed",
                "kl_mean",
                member=pl.col("family").replace_strict(MEMBER_NAMES),
                count=pl.lit(COUNT_TITLES[count]),
                classes=pl.col(count),
            )
            for count in COUNTS
        ]
    )


def _fit_lines(variants: pl.DataFrame) -> pl.DataFrame:
    null = variants.filter(pl.col("family").is_in(NULL_FAMILIES) & (pl.col("kl_mean") > 0))
    if null.height < 2:
        return pl.DataFrame(schema={"kl_mean": pl.Float64, "classes": pl.Float64, "count": pl.String})
    x = np.log(null["kl_mean"].to_numpy())
    pan = variants.filter(pl.col("family") == "pan_reflect")["kl_mean"]
    right = max(x.max(), np.log(pan.max())) if pan.len() else x.max()  # no line out to reflect's KL
    grid = np.exp(np.linspace(x.min(), right, 50))
    frames = []
    for count in COUNTS:
        slope, intercept = np.polyfit(x, null[count].to_numpy().astype(float), 1)
        frames.append(
            pl.DataFrame(
                {"kl_mean": grid, "classes": intercept + slope * np.log(grid), "count": COUNT_TITLES[count]}
            )
        )
    return pl.concat(frames)


def _floor(variants: pl.DataFrame) -> pl.DataFrame:
    halves = variants.filter(pl.col("family") == "halves")
    return pl.DataFrame(
        {
            "count": [COUNT_TITLES[c] for c in COUNTS],
            "low": [float(halves[c].mean()) if halves.height else 0.0 for c in COUNTS],
            "high": [float(halves[c].max()) if halves.height else 0.0 for c in COUNTS],
        }
    )


def noise_curve_chart(variants: pl.DataFrame, model: str) -> alt.HConcatChart:
    """Classes beyond the threshold against mean KL, one panel per count, PAN-reflect marked."""
    names = list(MEMBER_NAMES.values())
    x = alt.X("kl_mean:Q", title="mean KL(original || variant), nats", scale=alt.Scale(type="log"))
    points, lines, floors = _long(variants), _fit_lines(variants), _floor(variants)
    panels = []
    for count in COUNTS:
        title = COUNT_TITLES[count]
        floor = (
            alt.Chart(floors.filter(pl.col("count") == title))
            .mark_rect(color="#bbb", opacity=0.35)
            .encode(y="low:Q", y2="high:Q")
        )
        line = (
            alt.Chart(lines.filter(pl.col("count") == title))
            .mark_line(color="#555", strokeDash=[4, 3])
            .encode(x=x, y="classes:Q")
        )
        dots = (
            alt.Chart(points.filter(pl.col("count") == title))
            .mark_point(filled=True, size=60, opacity=0.8)
            .encode(
                x=x,
                y=alt.Y("classes:Q", title=title),
                color=alt.Color(
                    "member:N",
                    title=None,
                    sort=names,
                    scale=alt.Scale(domain=names, range=MEMBER_COLOURS),
                    legend=alt.Legend(orient="top"),
                ),
                shape=alt.Shape("member:N", sort=names, legend=None),
                tooltip=["variant", "member", "scale", "seed", "kl_mean", "classes"],
            )
        )
        panels.append(alt.layer(floor, line, dots).properties(width=260, height=220))
    return alt.hconcat(*panels).properties(
        title=f"{model}: classes moved against the perturbation's size (grey: halves floor, mean to max)"
    )


def write_noise_curve(variants_file: str | Path, model: str, html: str | Path, png: str | Path) -> None:
    """Render :func:`noise_curve_chart` of one model's noise-model table."""
    save_chart(noise_curve_chart(read_noise_variants(variants_file), model), html, png)
