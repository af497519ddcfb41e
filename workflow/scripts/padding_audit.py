from pan.beyond.audit import write_model_audit
from pan.logs import log_to

with log_to(snakemake.log[0]):
    write_model_audit(snakemake.params.model, snakemake.output.audit, snakemake.output.scan)
