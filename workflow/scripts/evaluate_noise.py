from pan.bias.noise_family import evaluate_noise_family, noise_family
from pan.logs import log_to

with log_to(snakemake.log[0]):
    params = snakemake.params
    family = noise_family(params.rand_seed, params.rand_seeds, params.channel_scales, params.weight_noise)
    evaluate_noise_family(
        params.model,
        params.images,
        snakemake.input[0],
        snakemake.output[0],
        family,
        micro_batch=params.micro_batch,
        device=params.device,
    )
