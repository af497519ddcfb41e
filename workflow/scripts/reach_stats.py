from pan.beyond.reach import score_reach
from pan.logs import log_to

with log_to(snakemake.log[0]):
    score_reach(
        snakemake.input[0],
        snakemake.output[0],
        snakemake.params.max_distance,
        snakemake.params.q,
        threads=snakemake.threads,
    )
