from pan.controls import score_run_layer
from pan.logs import log_to

with log_to(snakemake.log[0]):
    score_run_layer(snakemake.input[0], snakemake.wildcards.layer, snakemake.output[0])
