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
