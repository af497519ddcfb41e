from pan.bias.evaluation import evaluate_variants
from pan.logs import log_to

with log_to(snakemake.log[0]):
    evaluate_variants(
        snakemake.params.model,
        snakemake.params.images,
        snakemake.input[0],
        dict(snakemake.output.items()),
        rand_seed=snakemake.params.rand_seed,
        micro_batch=snakemake.params.micro_batch,
        device=snakemake.params.device,
    )
