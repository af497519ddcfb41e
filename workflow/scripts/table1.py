from pan.logs import log_to
from pan.tables import write_table1

with log_to(snakemake.log[0]):
    write_table1(dict(zip(snakemake.params.models, snakemake.input, strict=True)), snakemake.output[0])
