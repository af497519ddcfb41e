from pan.core.labelling import label_pan_files
from pan.logs import log_to

with log_to(snakemake.log[0]):
    label_pan_files(snakemake.input, snakemake.output[0], theta=snakemake.params.theta)
