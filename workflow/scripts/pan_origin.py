from pan.beyond.origin import write_origin_table
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_origin_table(dict(zip(snakemake.params.models, snakemake.input, strict=True)), snakemake.output[0])
