from pan.logs import log_to
from pan.tables import write_table2

with log_to(snakemake.log[0]):
    write_table2(snakemake.input, snakemake.output[0])
