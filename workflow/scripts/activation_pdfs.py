from pan.figures.distributions import write_activation_pdfs
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_activation_pdfs(
        snakemake.input.dump,
        snakemake.wildcards.model,
        snakemake.wildcards.slot,
        snakemake.input.get("selection"),
        snakemake.output.html,
        snakemake.output.png,
    )
