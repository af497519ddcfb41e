from pan.figures.rules import write_rule_figures
from pan.logs import log_to

with log_to(snakemake.log[0]):
    models = snakemake.params.models
    write_rule_figures(
        dict(zip(models, snakemake.input.ks, strict=True)),
        dict(zip(models, snakemake.input.interior, strict=True)),
        snakemake.input.table,
        dict(snakemake.output.items()),
    )
