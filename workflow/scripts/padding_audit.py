from pan.logs import log_to
from pan.padding_audit import write_model_audit

with log_to(snakemake.log[0]):
    write_model_audit(snakemake.params.model, snakemake.output.audit, snakemake.output.scan)
