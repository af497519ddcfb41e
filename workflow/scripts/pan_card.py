from pan.figures.cards import write_card
from pan.images import ImageSpec
from pan.logs import log_to
from pan.models import ModelSpec

with log_to(snakemake.log[0]):
    write_card(
        ModelSpec.from_config(snakemake.wildcards.model, snakemake.params.model),
        ImageSpec.from_config(snakemake.params.images),
        snakemake.input.dump,
        snakemake.wildcards.slot,
        snakemake.input.get("selection"),
        snakemake.params.heatmap_images,
        snakemake.output.html,
        snakemake.output.png,
        micro_batch=snakemake.params.micro_batch,
        device=snakemake.params.device,
    )
