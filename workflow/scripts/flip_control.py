from pan.beyond.flip import write_flip
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_flip(
        snakemake.params.model,
        snakemake.params.images,
        snakemake.input.labels,
        snakemake.output[0],
        snakemake.params.theta,
        micro_batch=snakemake.params.micro_batch,
        device=snakemake.params.device,
        replicates=snakemake.params.origin.replicates,
        seed=snakemake.params.origin.seed,
        q=snakemake.params.q,
        threads=snakemake.threads,
    )
