import functools
import os
import re
from pathlib import Path

from snakemake.utils import validate

from pan.beyond.flip import FLIPS
from pan.beyond.origin import CONDITIONS as ORIGIN_CONDITIONS
from pan.workflow.allocator import set_job_tunables
from pan.workflow.config import check_models, checked_eval_images, load_settings, reject_unknown_keys
from pan.workflow.sections import ConfigError
from pan.trust.runs import RUN_PATTERN, check_draws_differ, control_run, draw_run, parse_run, run_images
from pan.repair.compare import compare_pair_name
from pan.repair.names import LABELLED_STRATEGIES, before_name, repaired_name, swap_spec
from pan.workflow.resources import dump_mem_mb as forward_mem_mb
from pan.workflow.resources import in_memory_ks_mem_mb, ks_shapes_mem_mb, read_layer_shapes
from pan.workflow.resources import probe_mem_mb as probe_mem_mb_of
from pan.workflow.shape_checks import check_reflect_fits


# Jobs keep the memory they free for reuse (glibc): their forward passes run 1.3-1.6x faster.
set_job_tunables()

# Before any job: unknown keys (with the closest known one), the schema, then files and folders.
reject_unknown_keys(config)
validate(config, "../schemas/config.schema.yaml")
SETTINGS = load_settings(config)  # every rule's params come from these typed settings
MODELS = list(SETTINGS.models)
if workflow.is_main_process:  # builder and weights names before any job; jobs skip the torch import
    check_models(SETTINGS)
# KS jobs score on the GPU only when asked for one (gpus > 0, or device: cuda); else on the
# CPU, where they import no torch.
KS_DEVICE = "cpu" if SETTINGS.device == "cpu" or (SETTINGS.device == "auto" and SETTINGS.gpus == 0) else SETTINGS.device
# Report captions read `config`: give them the settings they quote, defaults resolved.
config.update(
    theta=SETTINGS.theta,
    odds_threshold=SETTINGS.odds_threshold,
    eval_images=vars(SETTINGS.eval_images),
    controls={"conditions": list(SETTINGS.controls.conditions), "seed": SETTINGS.controls.seed},
    stability={"draws": SETTINGS.stability.draws},
    share=vars(SETTINGS.share),
    bootstrap=vars(SETTINGS.bootstrap),
    repair={"steps": SETTINGS.repair.steps, "batch": SETTINGS.repair.batch},
)


wildcard_constraints:
    model="|".join(re.escape(name) for name in MODELS),
    layer=r"[^/]+",
    slot=r"[^/]+",
    # A run's outputs live under results/{run}: "" for the main run, else e.g. controls/reflect/.
    run=f"(?:(?:{RUN_PATTERN})/)?",


# Runs whose KS job reads their activation dump (kept: figures and reach read the main one);
# every other run makes its maps in its KS job and scores them in memory (pan.workflow.run_ks).
DUMPED_RUNS = {""}


def run_condition(wildcards):
    """``(condition, draw)`` of the run wildcard; the main run is ``("trained", None)``."""
    return parse_run(wildcards.run[:-1]) if wildcards.run else ("trained", None)


def run_images_of(wildcards):
    """The images the run of ``wildcards`` analyses."""
    return run_images(SETTINGS.images, wildcards.run[:-1]) if wildcards.run else SETTINGS.images


def run_seed(wildcards):
    """The random-init seed of a random_init run, else None."""
    return SETTINGS.controls.seed if run_condition(wildcards)[0] == "random_init" else None


def ks_input(wildcards):
    """A KS job's inputs: the layer shapes, and the run's dump where it keeps one."""
    inputs = {"shapes": run_shapes(wildcards)}
    if wildcards.run in DUMPED_RUNS:
        inputs["dump"] = f"results/{wildcards.run}activations/{wildcards.model}"
    return inputs


def ks_tables(wildcards):
    """The per-layer KS tables of a model (theta-free), in one folder."""
    return f"results/ks/{wildcards.model}"


def dump_mem_mb(wildcards, input, attempt):
    """Memory request (MB) of a forward-pass job, from the model's layer shapes (input ``shapes``)
    and the micro-batch."""
    return forward_mem_mb(read_layer_shapes(input.shapes), SETTINGS.micro_batch) * attempt


def probe_mem_mb(conditions):
    """Memory request (MB) of a probe job with that many conditions (origin, flip), from the
    layer shapes and the PANs of its input ``labels``."""

    def mem_mb(wildcards, input, threads, attempt):
        import polars as pl
        from pan.beyond.probe import pan_channels
        from pan.capture.images import image_records

        pans = {layer: len(neurons) for layer, (_, neurons) in pan_channels(pl.read_parquet(input.labels)).items()}
        images = len(image_records(SETTINGS.images))
        shapes = read_layer_shapes(input.shapes)
        return probe_mem_mb_of(shapes, pans, SETTINGS.micro_batch, images, conditions, threads) * attempt

    return mem_mb


def ks_mem_mb(wildcards, input, attempt):
    """Memory request (MB) of a run's KS job, from the layer shapes (planned before its dump
    exists): scoring a dump one layer at a time, or making and scoring the maps in memory."""
    from pan.capture.images import image_records

    images = len(image_records(run_images_of(wildcards)))
    shapes = read_layer_shapes(input.shapes)
    if "dump" in input.keys():
        return ks_shapes_mem_mb(shapes, images) * attempt
    return in_memory_ks_mem_mb(shapes, images) * attempt


def condition_labels(model):
    """condition -> PAN labels of ``model`` for every configured control condition."""
    return {
        condition: (
            f"results/pans/{model}.parquet"
            if condition == "trained"
            else f"results/{control_run(condition)}/pans/{model}.parquet"
        )
        for condition in SETTINGS.controls.conditions
    }


def draw_labels(model):
    """The PAN labels of every stability draw of ``model``."""
    try:  # only when a stability output is requested: draws that cannot differ measure nothing
        check_draws_differ(SETTINGS.images)
    except ValueError as error:
        raise ConfigError(f"invalid config: {error}") from error
    return [f"results/{draw_run(k)}/pans/{model}.parquet" for k in range(SETTINGS.stability.draws)]


@functools.cache
def reflect_fits(model):
    """Every analysed conv of ``model`` can pad with reflect (each amount smaller than its
    input side), checked from a shape-only pass while the DAG is built (main process only,
    once per model), or a ConfigError naming the layer, its input, its padding and the fix.
    A repaired model pads as its teacher does (its weights do not exist yet): its teacher is checked."""
    spec = SETTINGS.models[model]
    if spec.source == "repaired":
        return reflect_fits(spec.teacher.name)
    if workflow.is_main_process:
        from pan.workflow.resources import layer_shapes

        try:
            check_reflect_fits(model, layer_shapes(SETTINGS.models[model]))
        except ValueError as error:
            raise ConfigError(f"invalid config: {error}") from error
    return True


def reflect_shapes(wildcards):
    """A model's layer shapes, for a job that pads with reflect: once :func:`reflect_fits`."""
    reflect_fits(wildcards.model)
    return f"results/shapes/{wildcards.model}.json"


def run_shapes(wildcards):
    """A run's layer shapes; the reflect control pads with reflect (:func:`reflect_shapes`)."""
    if run_condition(wildcards)[0] == "reflect":
        return reflect_shapes(wildcards)
    return f"results/shapes/{wildcards.model}.json"


def evaluation_input(wildcards):
    """A model's PAN labels, once eval_images is checked and its convs can pad with reflect:
    only when section 4 is requested."""
    checked_eval_images(SETTINGS.eval_images)
    reflect_fits(wildcards.model)
    return f"results/pans/{wildcards.model}.parquet"


def injection_input(wildcards):
    """No files: checks eval_images and reflect padding when a zero-line output is requested
    (as evaluation_input)."""
    checked_eval_images(SETTINGS.eval_images)
    reflect_fits(wildcards.model)
    return {}


def eval_runtime_min(wildcards, attempt):
    """Minutes to request for evaluating four variants: about 100 images a minute on 2 CPU cores."""
    from pan.capture.images import image_records

    return (10 + len(image_records(SETTINGS.eval_images)) // 100) * attempt


def noise_runtime_min(wildcards, attempt):
    """Minutes for the §4 null family: the four variants' request per four members."""
    noise = SETTINGS.noise
    members = noise.rand_seeds - 1 + len(noise.channel_scales) + len(noise.weight_noise)
    return eval_runtime_min(wildcards, attempt) * max(1, -(-members // 4))


def per_model(pattern):
    """One file per configured model; scripts pair them with params.models, in the same order."""
    return expand(pattern, model=MODELS)


def neuron_figures_inputs(wildcards):
    """A model's neuron figures read its activation dump, and the selection where it has ranked
    slots; its cards pad with reflect (checked: :func:`reflect_shapes`)."""
    from pan.beyond.selection import is_ranked_slot

    inputs = {"dump": f"results/activations/{wildcards.model}", "shapes": reflect_shapes(wildcards)}
    if any(is_ranked_slot(slot) for slot in SETTINGS.figures.slots(wildcards.model)):
        inputs["selection"] = f"results/figures/{wildcards.model}/neurons.csv"
    return inputs


def neuron_figure_labels(slot):
    """Report labels of the neuron figures of ``slot``: which neuron, and why it was drawn."""

    def labels(wildcards, input):
        from pan.beyond.selection import slot_neuron

        neuron = slot_neuron(slot, input.get("selection"))
        return {"slot": neuron.slot, "layer": neuron.layer, "neuron": neuron.neuron, "why": neuron.description}

    return labels


def neuron_figure_outputs(slots):
    """The HTML and PNG of every neuron figure of ``slots``, keyed ``{slot}/{figure}.{ext}``
    (pan.figures.neurons.neuron_figure_key); each PNG goes into the report."""
    outputs = {}
    for slot in slots:
        for figure, subcategory in NEURON_FIGURES.items():
            paths = figure_outputs(f"neurons/{slot}/", figure, subcategory, neuron_figure_labels(slot))
            outputs |= {f"{slot}/{figure}.{ext}": path for ext, path in paths.items()}
    return outputs


def figure_outputs(directory, figure, subcategory, labels):
    """The HTML and the PNG of a figure; the PNG goes into the report with its caption."""
    path, caption = f"results/figures/{{model}}/{directory}{figure}", f"../report/{figure}.rst"
    png = report(f"{path}.png", caption=caption, category="{model}", subcategory=subcategory, labels=labels)
    return {"html": f"{path}.html", "png": png}


# The report (workflow/rules/report.smk): REPORT_TABLES, CARD_TABLES and OTHER_MODEL_FIGURES live there.
def card_tables(wildcards):
    """A card reads Table 2 and whichever other tables exist: it never starts their analyses."""
    paths = {key: path.format(model=wildcards.model) for key, path in CARD_TABLES.items()}
    return {key: path for key, path in paths.items() if key == "table2" or os.path.exists(path)}


def existing_report_items(wildcards):
    """The HTML of every table whose CSV exists and every figure PNG that exists: the report
    then shows exactly what has been run (a report() file that does not exist fails it)."""
    tables = [table.format(model=model) for table in REPORT_TABLES for model in MODELS]
    pngs = [f"results/figures/{model}/{figure}.png" for model in MODELS for figure in [*MODEL_FIGURES, *OTHER_MODEL_FIGURES]]
    pngs += [
        f"results/figures/{model}/neurons/{slot}/{figure}.png"
        for model in MODELS
        for slot in SETTINGS.figures.slots(model)
        for figure in NEURON_FIGURES
    ]
    html = [f"results/report/tables/{table}.html" for table in dict.fromkeys(tables)]
    return [path for path in html if os.path.exists(f"results/tables/{Path(path).stem}.csv")] + [
        path for path in pngs if os.path.exists(path)
    ]


def model_weights(wildcards):
    """The weights a derived (repaired) model loads, made by the repair rules; none for a
    configured model. Every rule that loads a model takes it as input."""
    spec = SETTINGS.models[wildcards.model]
    return [spec.state_dict] if spec.source == "repaired" else []


# Repair (workflow/rules/repair.smk)

REPAIR_TEACHERS = list(SETTINGS.repair.models)
REPAIR_STRATEGIES = list(SETTINGS.repair.strategies)
COMPARE_PAIRS = {
    compare_pair_name(a, b): (a, b)
    for a, b in [
        *[(t, repaired_name(t, s)) for t in REPAIR_TEACHERS for s in REPAIR_STRATEGIES],
        *SETTINGS.compare.pairs,
    ]
}


def repair_constraints():
    """Wildcard constraints of the repair rules: configured teachers and strategies only."""
    return {
        "teacher": "|".join(re.escape(t) for t in REPAIR_TEACHERS) or "(?!)",
        "strategy": "|".join(REPAIR_STRATEGIES) or "(?!)",
    }


def swap_input(wildcards):
    """pan_reflect's plain swap reads the teacher's PAN labels; the others read nothing."""
    if wildcards.strategy in LABELLED_STRATEGIES:
        return {"labels": f"results/pans/{wildcards.teacher}.parquet"}
    return {}


def repair_table_rows(wildcards):
    """Per teacher, strategy and stage: which model is measured, and its input files."""
    rows = []
    for teacher in REPAIR_TEACHERS:
        for strategy in REPAIR_STRATEGIES:
            for stage, model in (("before", before_name(teacher, strategy)), ("after", repaired_name(teacher, strategy))):
                rows.append(
                    {
                        "teacher": teacher,
                        "strategy": strategy,
                        "stage": stage,
                        "measured_model": model,
                        "teacher_eval": f"results/eval/{teacher}/original.parquet",
                        "model_eval": f"results/eval/{model}/original.parquet",
                        "labels": f"results/pans/{model}.parquet",
                        "injection": f"results/injection/{model}/original.parquet",
                        "provenance": f"results/repair/{teacher}/{strategy}/provenance.json" if stage == "after" else None,
                    }
                )
    return rows


def repair_table_input(wildcards):
    """Every file the repair table reads; checks eval_images first, as section 4 does."""
    checked_eval_images(SETTINGS.eval_images)
    files = set()
    for row in repair_table_rows(wildcards):
        files.update(v for k, v in row.items() if k in ("teacher_eval", "model_eval", "labels", "injection", "provenance") and v)
    return sorted(files)


def repair_targets(wildcards):
    """Everything `snakemake repair` makes; a clear error when no model is to be repaired."""
    if not REPAIR_TEACHERS:
        raise ValueError(
            "nothing to repair: list models under repair.models, e.g. "
            "--config 'repair={models: [efficientnet_lite0]}'"
        )
    return [
        "results/tables/repair.csv",
        *expand("results/figures/{teacher}/repair.png", teacher=REPAIR_TEACHERS),
        *expand("results/repair/{teacher}/{strategy}/student.pt2", teacher=REPAIR_TEACHERS, strategy=REPAIR_STRATEGIES),
        *expand("results/tables/compare_{pair}.csv", pair=list(COMPARE_PAIRS)),
    ]
