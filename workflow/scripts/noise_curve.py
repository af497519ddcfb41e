from pan.figures.noise import write_noise_curve
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_noise_curve(
        snakemake.input[0], snakemake.wildcards.model, snakemake.output.html, snakemake.output.png
    )
