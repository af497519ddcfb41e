from pan.bias.odds import write_odds
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_odds(snakemake.input, snakemake.output[0])
