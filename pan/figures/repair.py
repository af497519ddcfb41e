"""The repair figure: distillation loss and held-out fidelity against steps, per strategy.

Charts only: the curves come from :func:`pan.repair.distill.distill` (``curve.parquet``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import altair as alt
import polars as pl

from .render import save_chart

__all__ = ["repair_chart", "write_repair_figure"]


def repair_chart(curves: Mapping[str, pl.DataFrame], model: str) -> alt.HConcatChart:
    """Per strategy (colour): training loss per step, held-out mean KL and top-1 agreement with
    the teacher at each measurement (step 0: the plain swap)."""
    rows = pl.concat([curve.with_columns(strategy=pl.lit(name)) for name, curve in curves.items()])
    colour = alt.Color("strategy:N", title="strategy", sort=list(curves))
    base = alt.Chart(rows).encode(x=alt.X("step:Q", title="step"), color=colour)
    loss = (
        base.transform_filter("datum.loss != null")
        .mark_line(opacity=0.8)
        .encode(
            y=alt.Y(
                "loss:Q", title="distillation loss (batch)", scale=alt.Scale(type="symlog", constant=1e-3)
            ),
            tooltip=[
                "strategy:N",
                "step:Q",
                alt.Tooltip("loss:Q", format=".4f"),
                alt.Tooltip("images_per_s:Q", format=".1f"),
            ],
        )
        .properties(width=300, height=220, title="training loss")
    )
    held = base.transform_filter("datum.held_out_kl != null")
    kl = (
        held.mark_line(point=True)
        .encode(
            y=alt.Y("held_out_kl:Q", title="mean KL teacher -> student (nats)"),
            tooltip=["strategy:N", "step:Q", alt.Tooltip("held_out_kl:Q", format=".4f")],
        )
        .properties(width=300, height=220, title="held-out KL")
    )
    agreement = (
        held.mark_line(point=True)
        .encode(
            y=alt.Y("held_out_agreement:Q", title="top-1 agreement", axis=alt.Axis(format="%")),
            tooltip=["strategy:N", "step:Q", alt.Tooltip("held_out_agreement:Q", format=".1%")],
        )
        .properties(width=300, height=220, title="held-out agreement")
    )
    return alt.hconcat(loss, kl, agreement).properties(
        title=alt.Title(
            f"Repair of {model}: distillation towards the teacher",
            subtitle="held-out images of the repair set, never trained on; step 0 is the plain swap",
        )
    )


def write_repair_figure(
    curve_files: Mapping[str, str | Path], model: str, html: str | Path, png: str | Path
) -> None:
    """Render :func:`repair_chart` from each strategy's ``curve.parquet``."""
    curves = {name: pl.read_parquet(path) for name, path in curve_files.items()}
    save_chart(repair_chart(curves, model), html, png)
