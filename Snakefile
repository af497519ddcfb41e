# pan: find Padding Aware Neurons and measure the padding bias they carry.
# Usage: snakemake --cores 8 results/tables/table2.csv   (see README.md)
from snakemake.utils import min_version

min_version("8.0")


# A --configfile given on the command line replaces config.yaml instead of merging into it,
# so that e.g. config.paper.yaml analyses its own models only.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/ks.smk"
include: "workflow/rules/pans.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/padding_bias.smk"
include: "workflow/rules/outputs.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/trust.smk"
include: "workflow/rules/origin.smk"
include: "workflow/rules/flip.smk"
include: "workflow/rules/reach.smk"
include: "workflow/rules/injection.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/repair.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        "results/tables/table1.csv",
        "results/tables/table2.csv",
        "results/tables/unscoreable.csv",
    default_target: True
