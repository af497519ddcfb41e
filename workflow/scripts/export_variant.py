from pan.bias.export import export_model_variant
from pan.logs import log_to

with log_to(snakemake.log[0]):
    export_model_variant(
        snakemake.params.model,
        snakemake.input.labels,
        snakemake.wildcards.variant,
        snakemake.params.artefact,
        seed=snakemake.params.rand_seed,
    )
