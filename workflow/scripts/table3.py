from pan.bias import write_table3
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_table3(snakemake.input, snakemake.output[0], threshold=snakemake.params.threshold)
