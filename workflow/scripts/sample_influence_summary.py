from pan.bias.influence import write_influence_summary
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_influence_summary(
        dict(zip(snakemake.params.models, snakemake.input, strict=True)), snakemake.output[0]
    )
