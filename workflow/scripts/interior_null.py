from pan.core.interior import write_interior_null
from pan.logs import log_to

with log_to(snakemake.log[0]):
    models = snakemake.params.models
    write_interior_null(
        dict(zip(models, snakemake.input.interior, strict=True)),
        dict(zip(models, snakemake.input.labels, strict=True)),
        snakemake.output[0],
        snakemake.params.theta,
    )
