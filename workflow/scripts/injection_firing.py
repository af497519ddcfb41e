from pan.beyond.firing import write_firing_statistics
from pan.logs import log_to

with log_to(snakemake.log[0]):
    injection = snakemake.params.injection
    write_firing_statistics(
        snakemake.params.model,
        snakemake.params.images,
        injection.positions,
        injection.kinds,
        injection.count,
        snakemake.output.firing,
        snakemake.output.original,
        micro_batch=snakemake.params.micro_batch,
        device=snakemake.params.device,
        threads=snakemake.threads,
    )
