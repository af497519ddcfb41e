# The zero-line attack (pan/injection.py) on the first injection.count evaluation images.
# injection_firing (theta-free) records the firing statistics of every neuron and the original
# model's predictions in the same forward passes; injection_variants (pan_reflect and
# rand_reflect) depends on the labels. Theta enters the summary only.


rule injection_firing:
    input:
        unpack(injection_input),
        weights=model_weights,
    output:
        firing="results/injection/{model}/firing.parquet",
        original="results/injection/{model}/original.parquet",
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        images=SETTINGS.eval_images,
        injection=SETTINGS.injection,
        device=SETTINGS.device,
        micro_batch=SETTINGS.micro_batch,
    log:
        "results/logs/injection/{model}_firing.log",
    benchmark:
        "results/benchmarks/injection/{model}_firing.tsv"
    threads: 2
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/injection_firing.py"


rule injection_variants:
    input:
        unpack(injection_input),
        labels="results/pans/{model}.parquet",
        weights=model_weights,
    output:
        "results/injection/{model}/variants.parquet",
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        images=SETTINGS.eval_images,
        injection=SETTINGS.injection,
        rand_seed=SETTINGS.rand_seed,
        device=SETTINGS.device,
        micro_batch=SETTINGS.micro_batch,
    log:
        "results/logs/injection/{model}_variants.log",
    benchmark:
        "results/benchmarks/injection/{model}_variants.tsv"
    threads: 2
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/injection_variants.py"


rule injection_table:
    input:
        "results/injection/{model}/original.parquet",
        "results/injection/{model}/variants.parquet",
    output:
        # Not a report item (0.4 MB per model): the report shows injection_summary.
        "results/tables/injection_{model}.csv",
    log:
        "results/logs/tables/injection_{model}.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/injection_table.py"


rule injection_summary:
    input:
        firing=per_model("results/injection/{model}/firing.parquet"),
        labels=per_model("results/pans/{model}.parquet"),
        tables=per_model("results/tables/injection_{model}.csv"),
    output:
        summary=report(
            "results/tables/injection_summary.csv",
            caption="../report/injection_summary.rst",
            category="Beyond the paper",
        ),
        differences=report(
            "results/tables/injection_differences.csv",
            caption="../report/injection_differences.rst",
            category="Beyond the paper",
        ),
    params:
        models=MODELS,
        theta=SETTINGS.theta,
        bootstrap=SETTINGS.injection.bootstrap,
    log:
        "results/logs/tables/injection_summary.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/injection_summary.py"


rule injection_figure:
    input:
        unpack(injection_input),
        firing="results/injection/{model}/firing.parquet",
        labels="results/pans/{model}.parquet",
        shapes="results/shapes/{model}.json",
        weights=model_weights,
    output:
        **figure_outputs("", "injection_map", "Beyond the paper", {"figure": "A PAN under the zero-line attack"}),
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        images=SETTINGS.eval_images,
        injection=SETTINGS.injection,
        theta=SETTINGS.theta,
        device=SETTINGS.device,
    log:
        "results/logs/figures/{model}/injection_map.log",
    benchmark:
        "results/benchmarks/figures/{model}/injection_map.tsv"
    threads: 1
    resources:
        mem_mb=dump_mem_mb,
        runtime=lambda wildcards, attempt: 10 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/injection_figure.py"


rule beyond_paper:
    input:
        "results/tables/pan_origin.csv",
        "results/tables/reach.csv",
        "results/tables/injection_summary.csv",
        "results/tables/flip_control.csv",
        expand(
            "results/figures/{model}/{figure}.png",
            model=MODELS,
            figure=["reach_depth", "injection_map", "origin_2x2", "flip_borders"],
        ),
