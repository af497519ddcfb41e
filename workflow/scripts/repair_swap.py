from pan.logs import log_to
from pan.repair.outputs import write_swapped

with log_to(snakemake.log[0]):
    write_swapped(
        snakemake.params.teacher,
        snakemake.wildcards.strategy,
        snakemake.output[0],
        labels=snakemake.input.get("labels"),
    )
