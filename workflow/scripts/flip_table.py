from pan.beyond.flip import write_flip_table
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_flip_table(dict(zip(snakemake.params.models, snakemake.input, strict=True)), snakemake.output[0])
