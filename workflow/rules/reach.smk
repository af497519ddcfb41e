# Padding reach (pan/reach.py): rows/columns 0..reach.max_distance from each border against
# the inner centre, from the activation dumps (no model rerun). The statistics are theta-free;
# the table and the figure apply theta.


rule reach_stats:
    input:
        "results/activations/{model}",
    output:
        "results/reach/{model}.parquet",
    params:
        max_distance=SETTINGS.reach.max_distance,
        q=SETTINGS.share.q,
    log:
        "results/logs/reach/{model}.log",
    benchmark:
        "results/benchmarks/reach/{model}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wildcards, attempt: 1500 * attempt,
        runtime=lambda wildcards, attempt: 20 * attempt,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/reach_stats.py"


rule reach_table:
    input:
        per_model("results/reach/{model}.parquet"),
    output:
        table=report("results/tables/reach.csv", caption="../report/reach.rst", category="Beyond the paper"),
        skipped="results/tables/reach_skipped.csv",
    params:
        models=MODELS,
        theta=SETTINGS.theta,
    log:
        "results/logs/tables/reach.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/reach_table.py"


rule reach_figure:
    input:
        "results/reach/{model}.parquet",
    output:
        **figure_outputs("", "reach_depth", "Beyond the paper", {"figure": "Padding reach by depth"}),
    params:
        theta=SETTINGS.theta,
    log:
        "results/logs/figures/{model}/reach_depth.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/reach_figure.py"
