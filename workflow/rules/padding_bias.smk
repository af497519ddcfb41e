from pan.bias.variants import VARIANTS


rule evaluate_variants:
    input:
        evaluation_input,
    output:
        **{variant: f"results/eval/{{model}}/{variant}.parquet" for variant in VARIANTS},
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        images=SETTINGS.eval_images,
        rand_seed=SETTINGS.rand_seed,
        device=SETTINGS.device,
        micro_batch=SETTINGS.micro_batch,
    log:
        "results/logs/eval/{model}.log",
    benchmark:
        "results/benchmarks/eval/{model}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wildcards, attempt: 3000 * attempt,
        runtime=eval_runtime_min,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/evaluate_variants.py"


rule odds:
    input:
        expand("results/eval/{{model}}/{variant}.parquet", variant=VARIANTS),
    output:
        report(
            "results/tables/odds_{model}.csv",
            caption="../report/odds.rst",
            category="Padding bias",
            subcategory="Odds per class",
        ),
    log:
        "results/logs/tables/odds_{model}.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/odds.py"


rule sample_influence:
    input:
        expand("results/eval/{{model}}/{variant}.parquet", variant=VARIANTS),
    output:
        report(
            "results/tables/sample_influence_{model}.csv",
            caption="../report/sample_influence.rst",
            category="Padding bias",
            subcategory="Sample influence",
        ),
    log:
        "results/logs/tables/sample_influence_{model}.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/sample_influence.py"


rule table3:
    input:
        per_model("results/tables/odds_{model}.csv"),
    output:
        report("results/tables/table3.csv", caption="../report/table3.rst", category="Padding bias"),
    params:
        models=MODELS,
        threshold=SETTINGS.odds_threshold,
    log:
        "results/logs/tables/table3.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/table3.py"


rule sample_influence_summary:
    input:
        per_model("results/tables/sample_influence_{model}.csv"),
    output:
        report(
            "results/tables/sample_influence_summary.csv",
            caption="../report/sample_influence_summary.rst",
            category="Padding bias",
        ),
    params:
        models=MODELS,
    log:
        "results/logs/tables/sample_influence_summary.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/sample_influence_summary.py"
