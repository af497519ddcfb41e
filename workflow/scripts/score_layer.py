from pan.logs import log_to
from pan.scoring import score_layer

with log_to(snakemake.log[0]):
    score_layer(
        snakemake.input[0], snakemake.output[0], device=snakemake.params.device, threads=snakemake.threads
    )
