from pan.figures.neurons import write_neuron_figures
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_neuron_figures(
        snakemake.params.model,
        snakemake.params.images,
        snakemake.input.dump,
        snakemake.wildcards.model,
        snakemake.params.slots,
        snakemake.input.get("selection"),
        snakemake.params.heatmap_images,
        dict(snakemake.output.items()),
        micro_batch=snakemake.params.micro_batch,
        device=snakemake.params.device,
    )
