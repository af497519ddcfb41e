from pan.activations import dump_activations
from pan.images import ImageSpec
from pan.logs import log_to
from pan.models import ModelSpec

with log_to(snakemake.log[0]):
    dump_activations(
        ModelSpec.from_config(snakemake.wildcards.model, snakemake.params.model),
        ImageSpec.from_config(snakemake.params.images),
        snakemake.output[0],
        micro_batch=snakemake.params.micro_batch,
        device=snakemake.params.device,
    )
