from pan.bias.variants import VARIANTS


rule evaluate_variants:
    input:
        evaluation_input,
        weights=model_weights,
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
        # Not a report item: 1,000 rows per model (about 0.2 MB each in the report); the
        # log-odds figures and Table 3 show them.
        "results/tables/odds_{model}.csv",
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
        # The report shows Table 3 as an HTML table (report_table3), not this CSV (0.8 MB).
        "results/tables/table3.csv",
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


# §4 with a noise model (pan/noise_family.py, pan/noise.py): the null family of random
# perturbations on the same images, per-class odds intervals, the KL-matched null, the
# halves floor. Table 3 itself is unchanged; table3_noise.csv holds the new readings.


rule evaluate_noise:
    input:
        evaluation_input,
        weights=model_weights,
    output:
        "results/eval/{model}/noise.parquet",
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        images=SETTINGS.eval_images,
        rand_seed=SETTINGS.rand_seed,
        rand_seeds=SETTINGS.noise.rand_seeds,
        channel_scales=SETTINGS.noise.channel_scales,
        weight_noise=SETTINGS.noise.weight_noise,
        device=SETTINGS.device,
        micro_batch=SETTINGS.micro_batch,
    log:
        "results/logs/eval/{model}_noise.log",
    benchmark:
        "results/benchmarks/eval/{model}_noise.tsv"
    threads: 2
    resources:
        mem_mb=lambda wildcards, attempt: 3000 * attempt,
        runtime=noise_runtime_min,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/evaluate_noise.py"


rule noise_readings:
    input:
        runs=expand("results/eval/{{model}}/{variant}.parquet", variant=VARIANTS),
        noise="results/eval/{model}/noise.parquet",
    output:
        variants=report(
            "results/noise/{model}/variants.csv",
            caption="../report/noise_variants.rst",
            category="Padding bias",
            subcategory="Noise model",
        ),
        classes="results/noise/{model}/classes.csv",
    params:
        rand_seed=SETTINGS.rand_seed,
        threshold=SETTINGS.odds_threshold,
        min_mass=SETTINGS.noise.min_mass,
        bootstrap=SETTINGS.noise.bootstrap,
        splits=SETTINGS.noise.splits,
    log:
        "results/logs/tables/noise_{model}.log",
    benchmark:
        "results/benchmarks/tables/noise_{model}.tsv"
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/noise_readings.py"


rule table3_noise:
    input:
        per_model("results/noise/{model}/variants.csv"),
    output:
        report("results/tables/table3_noise.csv", caption="../report/table3_noise.rst", category="Padding bias"),
    params:
        models=MODELS,
    log:
        "results/logs/tables/table3_noise.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/table3_noise.py"


rule noise_curve:
    input:
        "results/noise/{model}/variants.csv",
    output:
        **figure_outputs("", "noise_curve", "Padding bias", {"figure": "Classes moved against KL"}),
    log:
        "results/logs/figures/{model}/noise_curve.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/noise_curve.py"


rule padding_bias:
    input:
        "results/tables/table3.csv",
        "results/tables/table3_noise.csv",
        expand("results/figures/{model}/noise_curve.{ext}", model=MODELS, ext=["html", "png"]),
