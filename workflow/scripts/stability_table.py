from pan.logs import log_to
from pan.trust.stability import write_stability_table

with log_to(snakemake.log[0]):
    write_stability_table(snakemake.params.models, list(snakemake.input), snakemake.output[0])
