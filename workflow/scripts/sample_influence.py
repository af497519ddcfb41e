from pan.bias.influence import write_sample_influence
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_sample_influence(snakemake.input, snakemake.output[0])
