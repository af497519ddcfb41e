from pan.beyond.origin import write_own_reflect_ks
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_own_reflect_ks(
        snakemake.params.model,
        snakemake.params.images,
        snakemake.output[0],
        micro_batch=snakemake.params.micro_batch,
        device=snakemake.params.device,
    )
