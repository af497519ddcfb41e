from pan.bias.noise import write_table3_noise
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_table3_noise(dict(zip(snakemake.params.models, snakemake.input, strict=True)), snakemake.output[0])
