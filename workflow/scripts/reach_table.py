from pan.beyond.reach import write_reach_tables
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_reach_tables(
        dict(zip(snakemake.params.models, snakemake.input, strict=True)),
        snakemake.output.table,
        snakemake.output.skipped,
        snakemake.params.theta,
    )
