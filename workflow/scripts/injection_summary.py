from pan.beyond.attack_summary import write_injection_summary
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_injection_summary(
        snakemake.params.models,
        snakemake.input.firing,
        snakemake.input.labels,
        snakemake.input.tables,
        snakemake.output.summary,
        snakemake.params.theta,
        bootstrap=snakemake.params.bootstrap,
        differences_out=snakemake.output.differences,
    )
