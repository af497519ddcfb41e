from pan.logs import log_to
from pan.trust.stability import write_stability

with log_to(snakemake.log[0]):
    write_stability(snakemake.input.draws, snakemake.input.main, snakemake.output[0])
