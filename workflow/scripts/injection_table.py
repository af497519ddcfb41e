from pan.beyond.attack import write_injection_table
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_injection_table(snakemake.input, snakemake.output[0])
