from pan.logs import log_to
from pan.trust.controls import dump_run

with log_to(snakemake.log[0]):
    dump_run(
        snakemake.params.model,
        snakemake.params.images,
        snakemake.output[0],
        None,
        condition=snakemake.params.condition,
        seed=snakemake.params.seed,
        micro_batch=snakemake.params.micro_batch,
        device=snakemake.params.device,
    )
