from pan.bias.noise import write_noise_readings
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_noise_readings(
        snakemake.input.runs,
        snakemake.input.noise,
        snakemake.output.variants,
        snakemake.output.classes,
        rand_seed=snakemake.params.rand_seed,
        threshold=snakemake.params.threshold,
        min_mass=snakemake.params.min_mass,
        bootstrap=snakemake.params.bootstrap,
        splits=snakemake.params.splits,
    )
