from pan.beyond.origin import write_origin
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_origin(
        snakemake.params.model,
        snakemake.params.images,
        snakemake.input.labels,
        snakemake.output.origin,
        snakemake.params.theta,
        micro_batch=snakemake.params.micro_batch,
        device=snakemake.params.device,
        replicates=snakemake.params.origin.replicates,
        seed=snakemake.params.origin.seed,
        q=snakemake.params.q,
        threads=snakemake.threads,
        strengths_out=snakemake.output.strengths,
    )
