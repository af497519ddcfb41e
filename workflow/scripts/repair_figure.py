from pan.figures.repair import write_repair_figure
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_repair_figure(
        dict(zip(snakemake.params.strategies, snakemake.input, strict=True)),
        snakemake.wildcards.teacher,
        snakemake.output.html,
        snakemake.output.png,
    )
