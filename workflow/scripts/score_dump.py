from pan.logs import log_to
from pan.scoring import score_dump

with log_to(snakemake.log[0]):
    score_dump(
        snakemake.input.dump, snakemake.output[0], device=snakemake.params.device, threads=snakemake.threads
    )
