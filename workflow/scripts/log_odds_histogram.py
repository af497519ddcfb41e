from pan.figures.odds import write_log_odds_histogram
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_log_odds_histogram(
        snakemake.input[0], snakemake.wildcards.model, snakemake.output.html, snakemake.output.png
    )
