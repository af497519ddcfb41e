from pan.beyond.card_maps import reflect_card_maps
from pan.beyond.selection import slot_neuron
from pan.logs import log_to

with log_to(snakemake.log[0]):
    reflect_card_maps(
        snakemake.params.model,
        snakemake.params.images,
        [slot_neuron(slot, snakemake.input.get("selection")) for slot in snakemake.params.slots],
        snakemake.output[0],
        micro_batch=snakemake.params.micro_batch,
        device=snakemake.params.device,
    )
