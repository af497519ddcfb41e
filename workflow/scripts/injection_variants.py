from pan.beyond.attack import write_variant_predictions
from pan.logs import log_to

with log_to(snakemake.log[0]):
    injection = snakemake.params.injection
    write_variant_predictions(
        snakemake.params.model,
        snakemake.params.images,
        injection.positions,
        injection.kinds,
        injection.count,
        snakemake.input.labels,
        snakemake.output[0],
        rand_seed=snakemake.params.rand_seed,
        micro_batch=snakemake.params.micro_batch,
        device=snakemake.params.device,
    )
