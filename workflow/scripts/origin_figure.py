from pan.figures.beyond import write_origin_figure
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_origin_figure(
        snakemake.input[0],
        snakemake.wildcards.model,
        snakemake.params.theta,
        snakemake.output.html,
        snakemake.output.png,
    )
