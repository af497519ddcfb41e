from pan.figures.trust import write_stability_histogram
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_stability_histogram(
        snakemake.input[0],
        snakemake.wildcards.model,
        snakemake.params.draws,
        snakemake.output.html,
        snakemake.output.png,
    )
