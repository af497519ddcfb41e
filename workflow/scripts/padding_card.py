from pan.logs import log_to
from pan.report import write_card

with log_to(snakemake.log[0]):
    tables = {key: snakemake.input[key] for key in snakemake.input.keys()}
    write_card(
        snakemake.wildcards.model,
        tables,
        snakemake.output.json,
        snakemake.output.html,
        snakemake.params.theta,
    )
