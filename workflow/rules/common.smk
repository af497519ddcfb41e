import re

from snakemake.utils import validate

from pan.config import activation_mem_mb, checked_eval_images, load_settings, reject_unknown_keys


# Before any job: unknown keys (with the closest known one), the schema, then files and folders.
reject_unknown_keys(config)
validate(config, "../schemas/config.schema.yaml")
SETTINGS = load_settings(config)  # every rule's params come from these typed settings
MODELS = list(SETTINGS.models)
# Report captions read `config`: give them the settings they quote, defaults resolved.
config.update(theta=SETTINGS.theta, odds_threshold=SETTINGS.odds_threshold, eval_images=vars(SETTINGS.eval_images))


wildcard_constraints:
    model="|".join(re.escape(name) for name in MODELS),
    layer=r"[^/]+",
    slot=r"[^/]+",


def analysed_layer_names(wildcards):
    """Layer names of a model, known once its activation dump (a checkpoint) exists."""
    from pan.dumps import read_manifest

    dump_dir = checkpoints.activations.get(model=wildcards.model).output[0]
    return [layer["name"] for layer in read_manifest(dump_dir)["layers"]]


def ks_tables(wildcards):
    """The per-layer KS tables of a model (theta-free)."""
    return expand(
        "results/ks/{model}/{layer}.parquet",
        model=wildcards.model,
        layer=analysed_layer_names(wildcards),
    )


def dump_mem_mb(wildcards, attempt):
    """Memory request (MB) of a forward-pass job, from the model and the micro-batch."""
    return activation_mem_mb(SETTINGS.models[wildcards.model], SETTINGS.micro_batch) * attempt


def evaluation_input(wildcards):
    """A model's PAN labels, once eval_images is checked: only when section 4 is requested."""
    checked_eval_images(SETTINGS.eval_images)
    return f"results/pans/{wildcards.model}.parquet"


def injection_input(wildcards):
    """No files: checks eval_images when a zero-line output is requested (as evaluation_input)."""
    checked_eval_images(SETTINGS.eval_images)
    return {}


def eval_runtime_min(wildcards, attempt):
    """Minutes to request for evaluating four variants: about 100 images a minute on 2 CPU cores."""
    from pan.images import image_records

    return (10 + len(image_records(SETTINGS.eval_images)) // 100) * attempt


def per_model(pattern):
    """One file per configured model; scripts pair them with params.models, in the same order."""
    return expand(pattern, model=MODELS)


def neuron_figure_inputs(wildcards):
    """A neuron figure reads the activation dump, plus the selection for ranked slots only."""
    from pan.selection import is_ranked_slot

    inputs = {"dump": f"results/activations/{wildcards.model}"}
    if is_ranked_slot(wildcards.slot):
        inputs["selection"] = f"results/figures/{wildcards.model}/neurons.csv"
    return inputs


def neuron_figure_labels(wildcards, input):
    """Report labels of a neuron figure: which neuron, and why it was drawn."""
    from pan.selection import slot_neuron

    neuron = slot_neuron(wildcards.slot, input.get("selection"))
    return {"slot": neuron.slot, "layer": neuron.layer, "neuron": neuron.neuron, "why": neuron.description}


def figure_outputs(directory, figure, subcategory, labels):
    """The HTML and the PNG of a figure; the PNG goes into the report with its caption."""
    path, caption = f"results/figures/{{model}}/{directory}{figure}", f"../report/{figure}.rst"
    png = report(f"{path}.png", caption=caption, category="{model}", subcategory=subcategory, labels=labels)
    return {"html": f"{path}.html", "png": png}
