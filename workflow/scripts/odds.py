from pan.logs import log_to
from pan.odds import write_odds

with log_to(snakemake.log[0]):
    write_odds(snakemake.input, snakemake.output[0])
