from pan.figures import write_model_figure
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_model_figure(
        snakemake.params.figure,
        snakemake.input,
        snakemake.wildcards.model,
        snakemake.output.html,
        snakemake.output.png,
    )
