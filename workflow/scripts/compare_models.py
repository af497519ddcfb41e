from pan.logs import log_to
from pan.repair.compare import write_comparison

with log_to(snakemake.log[0]):
    write_comparison(snakemake.input.a, snakemake.input.b, tuple(snakemake.params.names), snakemake.output[0])
