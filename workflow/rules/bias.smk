from pan.variants import VARIANTS


rule evaluate_variants:
    input:
        evaluation_input,
    output:
        **{variant: f"results/eval/{{model}}/{variant}.parquet" for variant in VARIANTS},
    params:
        model=lambda wildcards: config["models"][wildcards.model],
        images=config["eval_images"],
        rand_seed=config["rand_seed"],
        device=config["device"],
        micro_batch=config["micro_batch"],
    log:
        "results/logs/eval/{model}.log",
    benchmark:
        "results/benchmarks/eval/{model}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wildcards, attempt: 3000 * attempt,
        runtime=eval_runtime_min,
        gpu=config["gpus"],
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
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=10,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/odds.py"


rule table3:
    input:
        expand("results/tables/odds_{model}.csv", model=MODELS),
    output:
        report(
            "results/tables/table3.csv",
            caption="../report/table3.rst",
            category="Padding bias",
        ),
    params:
        threshold=config["odds_threshold"],
    log:
        "results/logs/tables/table3.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/table3.py"


rule sample_influence:
    input:
        expand("results/eval/{{model}}/{variant}.parquet", variant=VARIANTS),
    output:
        "results/tables/sample_influence_{model}.csv",
    log:
        "results/logs/tables/sample_influence_{model}.log",
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=10,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/sample_influence.py"


rule sample_influence_summary:
    input:
        expand("results/tables/sample_influence_{model}.csv", model=MODELS),
    output:
        report(
            "results/tables/sample_influence_summary.csv",
            caption="../report/sample_influence_summary.rst",
            category="Padding bias",
        ),
    log:
        "results/logs/tables/sample_influence_summary.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/sample_influence_summary.py"
