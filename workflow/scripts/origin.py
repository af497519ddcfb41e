from pan.beyond.origin import write_origin
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_origin(snakemake.input.labels, snakemake.input.own, snakemake.output[0], snakemake.params.theta)
