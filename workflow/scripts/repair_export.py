from pan.logs import log_to
from pan.repair.outputs import export_student

with log_to(snakemake.log[0]):
    export_student(snakemake.params.model, snakemake.input.provenance, snakemake.output.model)
