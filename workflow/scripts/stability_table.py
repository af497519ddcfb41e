from pan.controls import write_stability_table
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_stability_table(snakemake.params.models, list(snakemake.input), snakemake.output[0])
