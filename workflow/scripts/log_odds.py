from pan.figures.odds import write_ordered_log_odds
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_ordered_log_odds(
        snakemake.input[0], snakemake.wildcards.model, snakemake.output.html, snakemake.output.png
    )
