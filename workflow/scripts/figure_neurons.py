from pan.beyond.selection import write_selection
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_selection(
        snakemake.input.labels,
        snakemake.input.ks,
        snakemake.output[0],
        top_pans=snakemake.params.top_pans,
        top_edge_detectors=snakemake.params.top_edge_detectors,
    )
