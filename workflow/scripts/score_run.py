from pan.logs import log_to
from pan.workflow.run_ks import score_run

with log_to(snakemake.log[0]):
    score_run(
        snakemake.params.model,
        snakemake.params.images,
        snakemake.output.ks,
        snakemake.output.record,
        condition=snakemake.params.condition,
        seed=snakemake.params.seed,
        dump=snakemake.input.get("dump"),
        shapes=snakemake.input.shapes,
        micro_batch=snakemake.params.micro_batch,
        device=snakemake.params.device,
        ks_device=snakemake.params.ks_device,
        threads=snakemake.threads,
        q=snakemake.params.q,
        replicates=snakemake.params.replicates,
        bootstrap_seed=snakemake.params.bootstrap_seed,
        interior_out=snakemake.output.interior,
    )
