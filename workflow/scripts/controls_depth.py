from pan.figures.trust import write_controls_depth
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_controls_depth(
        dict(zip(snakemake.params.conditions, snakemake.input, strict=True)),
        snakemake.wildcards.model,
        snakemake.output.html,
        snakemake.output.png,
    )
