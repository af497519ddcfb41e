from pan.bias.outputs import write_flat_frame
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_flat_frame(
        snakemake.params.model, snakemake.output[0], snakemake.params.frame, snakemake.params.device
    )
