from pan.beyond.firing_pans import injected_maps
from pan.figures.beyond import write_injection_maps
from pan.logs import log_to

with log_to(snakemake.log[0]):
    maps = injected_maps(
        snakemake.params.model,
        snakemake.params.images,
        snakemake.params.injection.count,
        snakemake.input.firing,
        snakemake.input.labels,
        snakemake.params.theta,
        snakemake.params.injection.kinds,
        device=snakemake.params.device,
    )
    write_injection_maps(maps, snakemake.wildcards.model, snakemake.output.html, snakemake.output.png)
