from pan.capture.activations import dump_activations
from pan.logs import log_to

with log_to(snakemake.log[0]):
    dump_activations(
        snakemake.params.model,
        snakemake.params.images,
        snakemake.output[0],
        micro_batch=snakemake.params.micro_batch,
        device=snakemake.params.device,
    )
