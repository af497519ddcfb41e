from pan.logs import log_to
from pan.repair.table import repair_rows, write_repair_table

with log_to(snakemake.log[0]):
    write_repair_table([repair_rows(**row) for row in snakemake.params.rows], snakemake.output[0])
