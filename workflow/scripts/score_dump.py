from pan.core.scoring import score_dump
from pan.logs import log_to

with log_to(snakemake.log[0]):
    score_dump(
        snakemake.input.dump,
        snakemake.output[0],
        device=snakemake.params.device,
        threads=snakemake.threads,
        q=snakemake.params.q,
        replicates=getattr(snakemake.params, "replicates", 0),
        seed=getattr(snakemake.params, "seed", 0),
        interior_out=getattr(snakemake.output, "interior", None),
    )
