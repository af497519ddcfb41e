from pan.figures.ks_plots import write_ks_distributions
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_ks_distributions(
        snakemake.input, snakemake.wildcards.model, snakemake.output.html, snakemake.output.png
    )
