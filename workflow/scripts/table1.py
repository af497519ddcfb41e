from pan.logs import log_to
from pan.tables import write_table1

with log_to(snakemake.log[0]):
    write_table1(snakemake.input, snakemake.output[0])
