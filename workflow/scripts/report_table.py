from pan.logs import log_to
from pan.report import write_table_html

with log_to(snakemake.log[0]):
    write_table_html(
        snakemake.input[0], snakemake.output[0], snakemake.params.title.format(**snakemake.wildcards)
    )
