# Section 4 for any output (pan/bias/outputs.py): how much each variant changes a model's
# output and where (border frame against interior), and the original's frame on flat images.
# Classifiers get these besides the odds, Table 3 and the sample influence; dense models
# (edge, text detection) get only these.
from pan.bias.variants import VARIANTS


rule output_change:
    input:
        expand("results/eval/{{model}}/{variant}.parquet", variant=VARIANTS),
    output:
        change=report(
            "results/tables/output_change_{model}.csv",
            caption="../report/output_change.rst",
            category="Padding bias",
            subcategory="Any output",
        ),
        ranking="results/tables/output_change_images_{model}.csv",
        change_map="results/outputs/{model}/change_map.parquet",
    params:
        frame=SETTINGS.outputs.frame,
    log:
        "results/logs/outputs/change_{model}.log",
    resources:
        mem_mb=lambda wildcards, attempt: 3000 * attempt,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/output_change.py"


rule flat_frame:
    input:
        weights=model_weights,
    output:
        report(
            "results/tables/flat_frame_{model}.csv",
            caption="../report/flat_frame.rst",
            category="Padding bias",
            subcategory="Any output",
        ),
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        frame=SETTINGS.outputs.frame,
        device=SETTINGS.device,
    log:
        "results/logs/outputs/flat_{model}.log",
    benchmark:
        "results/benchmarks/outputs/flat_{model}.tsv"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 3000 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/flat_frame.py"


rule any_output_tables:
    input:
        change=per_model("results/tables/output_change_{model}.csv"),
        flat=per_model("results/tables/flat_frame_{model}.csv"),
    output:
        change=report(
            "results/tables/output_change.csv",
            caption="../report/output_change.rst",
            category="Padding bias",
        ),
        flat=report(
            "results/tables/flat_frame.csv", caption="../report/flat_frame.rst", category="Padding bias"
        ),
    log:
        "results/logs/tables/any_output.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/any_output_tables.py"


rule any_output:
    input:
        rules.any_output_tables.output,
