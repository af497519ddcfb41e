from pan.bias.outputs import write_output_change
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_output_change(
        list(snakemake.input),
        snakemake.output.change,
        snakemake.output.ranking,
        snakemake.output.change_map,
        snakemake.params.frame,
    )
