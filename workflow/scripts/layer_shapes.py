from pan.logs import log_to
from pan.workflow.resources import write_layer_shapes

with log_to(snakemake.log[0]):
    write_layer_shapes(snakemake.params.model, snakemake.output[0])
