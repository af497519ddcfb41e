from pan.logs import log_to
from pan.trust.controls import write_controls_table

with log_to(snakemake.log[0]):
    write_controls_table(
        dict(zip(map(tuple, snakemake.params.label_keys), snakemake.input.labels, strict=True)),
        dict(zip(map(tuple, snakemake.params.record_keys), snakemake.input.records, strict=True)),
        snakemake.output[0],
    )
