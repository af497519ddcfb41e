from pan.beyond.card_maps import read_card_maps
from pan.beyond.neurons import neuron_card
from pan.beyond.selection import slot_neuron
from pan.figures.cards import write_card
from pan.logs import log_to

with log_to(snakemake.log[0]):
    neuron = slot_neuron(snakemake.wildcards.slot, snakemake.input.get("selection"))
    card = neuron_card(
        snakemake.params.model,
        snakemake.params.images,
        snakemake.input.dump,
        neuron,
        snakemake.params.heatmap_images,
        micro_batch=snakemake.params.micro_batch,
        device=snakemake.params.device,
        reflected=read_card_maps(snakemake.input.reflect, snakemake.wildcards.slot),
    )
    write_card(card, snakemake.wildcards.model, snakemake.output.html, snakemake.output.png)
