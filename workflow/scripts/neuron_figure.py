from pan.figures import write_neuron_figure
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_neuron_figure(
        snakemake.params.figure,
        snakemake.input.dump,
        snakemake.wildcards.model,
        snakemake.wildcards.slot,
        snakemake.input.get("selection"),
        snakemake.output.html,
        snakemake.output.png,
    )
