from pan.logs import log_to
from pan.trust.controls import label_run_files

with log_to(snakemake.log[0]):
    label_run_files(snakemake.input, snakemake.output[0], theta=snakemake.params.theta)
