from pan.logs import log_to
from pan.tables import write_table3

with log_to(snakemake.log[0]):
    odds = dict(zip(snakemake.params.models, snakemake.input, strict=True))
    write_table3(odds, snakemake.output[0], threshold=snakemake.params.threshold)
