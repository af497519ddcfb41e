from pan.figures.ks_plots import write_theta_sweep
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_theta_sweep(snakemake.input, snakemake.wildcards.model, snakemake.output.html, snakemake.output.png)
