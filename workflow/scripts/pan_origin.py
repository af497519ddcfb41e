from pan.logs import log_to
from pan.origin import write_origin_table

with log_to(snakemake.log[0]):
    write_origin_table(dict(zip(snakemake.params.models, snakemake.input, strict=True)), snakemake.output[0])
