from pan.bias.outputs import write_any_output_tables
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_any_output_tables(
        list(snakemake.input.change),
        list(snakemake.input.flat),
        snakemake.output.change,
        snakemake.output.flat,
    )
