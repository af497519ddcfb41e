from pan.bias.table3 import write_table3
from pan.logs import log_to

with log_to(snakemake.log[0]):
    odds = dict(zip(snakemake.params.models, snakemake.input, strict=True))
    write_table3(odds, snakemake.output[0], threshold=snakemake.params.threshold)
