from pan.evaluation import evaluate_variants
from pan.images import ImageSpec
from pan.logs import log_to
from pan.models import ModelSpec

with log_to(snakemake.log[0]):
    evaluate_variants(
        ModelSpec.from_config(snakemake.wildcards.model, snakemake.params.model),
        ImageSpec.from_config(snakemake.params.images),
        snakemake.input[0],
        dict(snakemake.output.items()),
        rand_seed=snakemake.params.rand_seed,
        batch_size=snakemake.params.micro_batch,
        device=snakemake.params.device,
    )
