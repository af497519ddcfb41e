from pan.logs import log_to
from pan.repair.outputs import repair

with log_to(snakemake.log[0]):
    repair(
        snakemake.params.swapped,
        snakemake.params.settings,
        snakemake.output.student,
        snakemake.output.curve,
        snakemake.output.provenance,
        device=snakemake.params.device,
    )
