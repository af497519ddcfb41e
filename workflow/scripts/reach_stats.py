from pan.logs import log_to
from pan.reach import score_reach

with log_to(snakemake.log[0]):
    score_reach(snakemake.input[0], snakemake.output[0], snakemake.params.max_distance)
