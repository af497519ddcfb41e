from pan.figures.ks_plots import write_depth
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_depth(snakemake.input[0], snakemake.wildcards.model, snakemake.output.html, snakemake.output.png)
