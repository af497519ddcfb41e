import re

from snakemake.utils import validate

from pan.config import checked_config


validate(config, "../schemas/config.schema.yaml")
SETTINGS = checked_config(config)  # semantic checks: files, folders, images; fails before any job
MODELS = list(SETTINGS.models)


wildcard_constraints:
    model="|".join(re.escape(name) for name in MODELS),
    layer=r"[^/]+",


def analysed_layer_names(wildcards):
    """Layer names of a model, known once its activation dump (a checkpoint) exists."""
    dump_dir = checkpoints.activations.get(model=wildcards.model).output[0]
    return SETTINGS.layer_names(dump_dir)


def activation_mem_mb(model):
    """Memory request (MB) of an activation dump, from the model and the micro-batch."""
    from pan.config import activation_mem_mb as estimate

    return estimate(SETTINGS.models[model], config["micro_batch"])


def evaluation_input(wildcards):
    """A model's PAN labels, once eval_images is checked: only when section 4 is requested."""
    from pan.config import checked_eval_images

    checked_eval_images(SETTINGS.eval_images)
    return f"results/pans/{wildcards.model}.parquet"


def eval_runtime_min(wildcards, attempt):
    """Minutes to request for evaluating four variants: about 100 images a minute on 2 CPU cores."""
    from pan.images import image_records

    return (10 + len(image_records(SETTINGS.eval_images)) // 100) * attempt


def ks_tables(wildcards):
    """The per-layer KS tables of a model (theta-free)."""
    return expand(
        "results/ks/{model}/{layer}.parquet",
        model=wildcards.model,
        layer=analysed_layer_names(wildcards),
    )


def neuron_figure_inputs(wildcards):
    """A neuron figure reads the activation dump, plus the selection for ranked slots only."""
    from pan.figures.selection import is_ranked_slot

    inputs = {"dump": f"results/activations/{wildcards.model}"}
    if is_ranked_slot(wildcards.slot):
        inputs["selection"] = f"results/figures/{wildcards.model}/neurons.csv"
    return inputs


def neuron_figure_labels(wildcards, input):
    """Report labels of a neuron figure: which neuron, and why it was drawn."""
    from pan.figures.selection import slot_neuron

    neuron = slot_neuron(wildcards.slot, input.get("selection"))
    return {"slot": neuron.slot, "layer": neuron.layer, "neuron": neuron.neuron, "why": neuron.description}
