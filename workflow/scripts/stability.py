from pan.controls import write_stability
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_stability(snakemake.input.draws, snakemake.input.main, snakemake.output[0])
