"""The padding card: one page per model with the headline numbers of every analysis run so far.

A card reads whatever tables exist (Table 2, controls, stability, origin, reach, Table 3 and
sample influence, the zero-line attack summary, the padding audit) and says "not run" for the
rest, naming the target that fills it in. Its JSON is diffable between runs: sorted keys,
floats rounded to 4 decimals, no timestamps or absolute paths. Each section keeps the model's
whole row(s) besides its headline fields, so columns that a table gains later show up on the
card without code changes here.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl

from pan.report.html import cell, page, rounded

__all__ = ["CARD_KEYS", "NOT_RUN", "SECTIONS", "card_html", "padding_card", "write_card"]

NOT_RUN = "not run"
"""The ``status`` of a section whose table does not exist yet."""

SECTIONS: dict[str, tuple[str, str, str]] = {
    # section: (table key, target that writes it, title)
    "pans": ("table2", "results/tables/table2.csv", "PANs (Table 2)"),
    "controls": ("controls", "trust", "Controls: random init and reflect padding"),
    "interval": ("stability", "trust", "PAN share over image draws (95 % interval)"),
    "origin": ("pan_origin", "beyond_paper", "Origin: nascent or downstream"),
    "reach": ("reach", "beyond_paper", "Padding reach"),
    "padding_bias": ("table3", "table3", "Padding bias (section 4)"),
    "sample_influence": ("sample_influence_summary", "table3", "Images the PANs change (section 4)"),
    "attack": ("injection_summary", "beyond_paper", "Zero-line attack"),
    "audit": ("padding_audit", "take_away", "Padding audit"),
}
"""Card sections, in page order: the table each reads, the target that writes it, its title."""

CARD_KEYS = ("model", "sections", "theta")
"""Top-level keys of a card's JSON; ``sections`` has every key of :data:`SECTIONS`, each with
``status`` (``ok``, ``not run``, or ``no rows`` when the table has none for the model),
``source`` (the table's file name), ``target``, ``title``, and for ``ok`` its ``headline``
numbers and ``rows`` (the model's rows of the table, every column; audit: none)."""


def _rows(frame: pl.DataFrame) -> list[dict]:
    return [{key: rounded(value) for key, value in row.items()} for row in frame.iter_rows(named=True)]


def _pans(frame: pl.DataFrame) -> dict:
    row = frame.row(0, named=True)
    keys = ("pans", "neurons", "pan_pct", "scoreable_neurons", "pan_pct_scoreable", "edge_detectors")
    return {key: rounded(row[key]) for key in keys if key in row}


def _controls(frame: pl.DataFrame) -> dict:
    out = {}
    for row in frame.iter_rows(named=True):
        fields = {key: rounded(row[key]) for key in ("pans", "neurons", "pan_pct") if key in row}
        if row.get("note"):
            fields["note"] = row["note"]
        out[str(row.get("condition"))] = fields
    return out


def _interval(frame: pl.DataFrame) -> dict:
    row = frame.row(0, named=True)
    keys = (
        "draws",
        "pan_pct_mean",
        "pan_pct_low",
        "pan_pct_high",
        "jaccard_mean",
        "pans_every_draw",
        "pans_any_draw",
    )
    return {key: rounded(row[key]) for key in keys if key in row}


def _origin(frame: pl.DataFrame) -> dict:
    rows = frame.filter(pl.col("pan_type") == "all") if "pan_type" in frame.columns else frame
    if rows.is_empty():
        return {}
    row = rows.row(0, named=True)
    return {key: rounded(row[key]) for key in ("pans", "nascent", "downstream", "mixed") if key in row}


def _reach(frame: pl.DataFrame) -> dict:
    if not {"distance", "padding_aware"} <= set(frame.columns):
        return {}
    aware = frame.sort("distance").filter(pl.col("padding_aware") > 0)
    out = {
        "padding_aware_by_distance": {
            str(d): n for d, n in zip(frame["distance"], frame["padding_aware"], strict=True)
        }
    }
    out["farthest_distance_padding_aware"] = int(aware["distance"].max()) if aware.height else None
    return out


def _padding_bias(frame: pl.DataFrame) -> dict:
    if not {"variant", "direction"} <= set(frame.columns):
        return {}
    counts = frame.group_by("variant", "direction").len().sort("variant", "direction")
    out: dict[str, dict[str, int]] = {}
    for variant, direction, n in counts.iter_rows():
        out.setdefault(f"classes_beyond_threshold_{variant}", {})[direction] = n
    return out


def _sample_influence(frame: pl.DataFrame) -> dict:
    row = frame.row(0, named=True)
    return {
        key: rounded(value) for key, value in row.items() if key.startswith(("disagreements_", "accuracy_"))
    }


def _attack(frame: pl.DataFrame) -> dict:
    needed = {"kind", "orientation", "variant", "top1_change_rate"}
    if not needed <= set(frame.columns):
        return {}
    zero = frame.filter(pl.col("kind") == "zero").sort("orientation", "variant")
    columns = zero.select("orientation", "variant", "top1_change_rate").rows()
    out = {f"zero_top1_change_{o}_{v}": rounded(r) for o, v, r in columns}
    if "pans_firing_fraction" in zero.columns:
        firing = zero.filter(pl.col("variant") == "original")
        for o, f in firing.select("orientation", "pans_firing_fraction").rows():
            out[f"zero_pans_firing_{o}"] = rounded(f)
    return out


def _audit(frame: pl.DataFrame) -> dict:
    out = {"layers": frame.height}
    if "uneven" in frame.columns:
        out["uneven_layers"] = int(frame["uneven"].cast(pl.Int64).sum())
    dropped = [c for c in ("dropped_cols", "dropped_rows") if c in frame.columns]
    if dropped:
        out["dropped_lines"] = int(frame.select(pl.sum_horizontal(dropped)).to_series().sum())
    uneven, lost = out.get("uneven_layers"), out.get("dropped_lines")
    if uneven is not None:
        out["verdict"] = (
            "every padded layer pads evenly"
            if uneven == 0 and not lost
            else f"{uneven} of {frame.height} layers pad unevenly, {lost or 0} input rows/columns dropped"
        )
    return out


_HEADLINES: dict[str, Callable[[pl.DataFrame], dict]] = {
    "pans": _pans,
    "controls": _controls,
    "interval": _interval,
    "origin": _origin,
    "reach": _reach,
    "padding_bias": _padding_bias,
    "sample_influence": _sample_influence,
    "attack": _attack,
    "audit": _audit,
}
_NO_ROWS = {"padding_bias", "audit"}  # long tables: the headline sums them up


def _section(name: str, model: str, path: str | Path | None) -> dict:
    table, target, title = SECTIONS[name]
    out = {"title": title, "target": target, "source": Path(path).name if path else f"{table}.csv"}
    if path is None or not Path(path).exists():
        return out | {"status": NOT_RUN}
    frame = pl.read_csv(path, infer_schema_length=None)
    if "model" in frame.columns:
        frame = frame.filter(pl.col("model") == model)
    if frame.is_empty():
        return out | {"status": "no rows"}
    # Tables with a ``rule`` column (pan.core.labelling.RULES) head with the paper rule's row;
    # ``rows`` keep both rules.
    paper = frame.filter(pl.col("rule") == "paper") if "rule" in frame.columns else frame
    out |= {"status": "ok", "headline": _HEADLINES[name](paper if not paper.is_empty() else frame)}
    if name not in _NO_ROWS:
        out["rows"] = _rows(frame)
    return out


def padding_card(model: str, tables: Mapping[str, str | Path], theta: float | None = None) -> dict:
    """The card of ``model`` from ``tables`` (table key of :data:`SECTIONS` -> CSV path; keys
    missing or files absent are "not run"). See :data:`CARD_KEYS`.

    >>> card = padding_card("m", {})
    >>> sorted(card) == sorted(CARD_KEYS), card["sections"]["pans"]["status"]
    (True, 'not run')
    """
    sections = {name: _section(name, model, tables.get(key)) for name, (key, _, _) in SECTIONS.items()}
    return {"model": model, "theta": theta, "sections": sections}


def _headline_html(name: str, headline: dict) -> str:
    if name == "controls":
        headline = {f"{cond} {key}": v for cond, fields in headline.items() for key, v in fields.items()}
    flat = {}
    for key, value in headline.items():
        if isinstance(value, dict):
            flat |= {f"{key} {k}": v for k, v in value.items()}
        else:
            flat[key] = value
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td class='num'>{cell(v)}</td></tr>" for k, v in flat.items()
    )
    return f"<table>{rows}</table>"


def _summary(card: dict) -> str:
    s = card["sections"]
    if s["pans"]["status"] != "ok":
        return "No PANs counted yet: run <code>snakemake results/tables/table2.csv</code>."
    p = s["pans"]["headline"]
    text = f"{cell(p.get('pans'))} PANs of {cell(p.get('neurons'))} neurons ({cell(p.get('pan_pct'))} %)"
    if s["interval"]["status"] == "ok":
        i = s["interval"]["headline"]
        low, high = cell(i.get("pan_pct_low")), cell(i.get("pan_pct_high"))
        text += f"; over {cell(i.get('draws'))} image draws {low}-{high} %"
    if s["controls"]["status"] == "ok":
        for cond in ("random_init", "reflect"):
            c = s["controls"]["headline"].get(cond)
            if c:
                text += f"; {cond}: {cell(c.get('pans'))} ({cell(c.get('pan_pct'))} %)"
    if s["audit"]["status"] == "ok" and "verdict" in s["audit"]["headline"]:
        text += f". Audit: {html.escape(s['audit']['headline']['verdict'])}"
    return text + "."


def card_html(card: dict) -> str:
    """The card as one HTML page: a summary line, then each section's headline (or "not run")."""
    body = [f'<p class="headline">{_summary(card)}</p>']
    if card.get("theta") is not None:
        body.append(f'<p class="note">θ = {cell(card["theta"])}</p>')
    body.append('<div class="sections">')
    for name, section in card["sections"].items():
        body.append(f"<section><h2>{html.escape(section['title'])}</h2>")
        if section["status"] != "ok":
            target = html.escape(section["target"])
            body.append(
                f'<p class="notrun">{section["status"]} (<code>snakemake {target}</code>)</p></section>'
            )
            continue
        body.append(_headline_html(name, section["headline"]))
        body.append(f'<p class="note">from <code>{html.escape(section["source"])}</code></p></section>')
    body.append("</div>")
    return page(f"Padding card: {card['model']}", "\n".join(body))


def write_card(
    model: str,
    tables: Mapping[str, str | Path],
    json_out: str | Path,
    html_out: str | Path,
    theta: float | None = None,
) -> dict:
    """Write the card of ``model`` as JSON (sorted keys, rounded numbers) and as HTML; return it."""
    card = padding_card(model, tables, theta)
    for path in (json_out, html_out):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(json_out).write_text(json.dumps(card, sort_keys=True, indent=2, allow_nan=False) + "\n")
    Path(html_out).write_text(card_html(card))
    return card
