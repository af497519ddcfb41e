"""Every per-neuron figure of a model in one go: Fig. 3, Fig. 5 and the PAN card of each slot.

A model's neuron figures share their inputs: the activation dump, the slot selection, the
model (its kernels and input crops) and the reflect pass behind the cards. Rendering them in
one process loads each once (:func:`pan.beyond.neurons.neuron_cards`) instead of once per
figure, and the figures are those that a process per figure draws: the same charts of the
same data.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from tqdm import tqdm

from pan.beyond.neurons import neuron_cards
from pan.beyond.selection import slot_neuron
from pan.figures.cards import write_card
from pan.figures.distributions import activation_pdf_chart, neuron_title, truncated_centre_chart
from pan.figures.render import save_chart

if TYPE_CHECKING:
    from pan.capture.images import ImageSpec
    from pan.capture.models import ModelSpec

__all__ = ["NEURON_FIGURES", "neuron_figure_key", "write_neuron_figures"]

NEURON_FIGURES = ("activation_pdfs", "truncated_centre", "card")
"""The figures of every neuron slot: Fig. 3, Fig. 5 and the PAN card (Figs. 6-8)."""


def neuron_figure_key(slot: str, figure: str, ext: str) -> str:
    """``{slot}/{figure}.{ext}``: a figure's key in the ``outputs`` of :func:`write_neuron_figures`
    (its path below the model's ``neurons/`` folder)."""
    return f"{slot}/{figure}.{ext}"


def write_neuron_figures(
    spec: ModelSpec,
    images: ImageSpec,
    dump_dir: str | Path,
    model: str,
    slots: Sequence[str],
    selection: str | Path | None,
    heatmap_images: Sequence[int],
    outputs: Mapping[str, str | Path],
    micro_batch: int,
    device: str = "auto",
    progress: TextIO | None = None,
) -> None:
    """Render :data:`NEURON_FIGURES` for the neuron of every slot of ``model``, as HTML and PNG
    at ``outputs[neuron_figure_key(slot, figure, ext)]``.

    ``selection``: the ranked slots' neurons (:func:`pan.beyond.selection.write_selection`),
    needed when ``slots`` holds ranked ones. Every slot's neuron and every output path is
    checked before the model runs. Progress (the reflect pass in images/s, then the figures)
    goes to ``progress``, by default the ``sys.stderr`` of the moment (a job's log).
    """
    missing = [
        neuron_figure_key(slot, figure, ext)
        for slot in slots
        for figure in NEURON_FIGURES
        for ext in ("html", "png")
        if neuron_figure_key(slot, figure, ext) not in outputs
    ]
    if missing:
        raise ValueError(f"no output path for the neuron figures {missing}")
    neurons = [slot_neuron(slot, selection) for slot in slots]
    cards = neuron_cards(spec, images, dump_dir, neurons, heatmap_images, micro_batch, device, progress)
    bar = tqdm(
        total=len(slots) * len(NEURON_FIGURES),
        unit="figure",
        desc=f"render {model}",
        file=progress or sys.stderr,
        mininterval=5,
    )
    for slot in slots:
        card = cards[slot]
        out = {f: [outputs[neuron_figure_key(slot, f, e)] for e in ("html", "png")] for f in NEURON_FIGURES}
        title = neuron_title(card.found, model, "Border and centre PDFs")
        save_chart(activation_pdf_chart(card.zero, title), *out["activation_pdfs"])
        bar.update()
        title = neuron_title(card.found, model, "Truncated centres")
        save_chart(truncated_centre_chart(card.zero, title), *out["truncated_centre"])
        bar.update()
        write_card(card, model, *out["card"])
        bar.update()
        bar.set_postfix_str(f"{slot} done", refresh=False)
    bar.close()
