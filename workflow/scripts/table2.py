from pan.core.tables import write_table2
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_table2(dict(zip(snakemake.params.models, snakemake.input, strict=True)), snakemake.output[0])
