from pan.bias import write_influence_summary
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_influence_summary(snakemake.input, snakemake.output[0])
