from pan.logs import log_to
from pan.workflow.shape_checks import write_unscoreable_layers

with log_to(snakemake.log[0]):
    write_unscoreable_layers(
        dict(zip(snakemake.params.models, snakemake.input, strict=True)), snakemake.output[0]
    )
