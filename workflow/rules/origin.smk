# Nascent vs downstream PANs (pan/origin.py): each layer rerun with reflect padding in its own
# conv only. The forward passes are theta-free (one job per model); theta enters only in the
# cheap origin labelling, so a theta change reruns origin and pan_origin, never the passes.


rule own_reflect_ks:
    input:
        shapes=reflect_shapes,
        weights=model_weights,
    output:
        "results/ks_own_reflect/{model}.parquet",
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        images=SETTINGS.images,
        device=SETTINGS.device,
        micro_batch=SETTINGS.micro_batch,
    log:
        "results/logs/origin/{model}_own_reflect.log",
    benchmark:
        "results/benchmarks/origin/{model}_own_reflect.tsv"
    threads: 2
    resources:
        mem_mb=dump_mem_mb,
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/own_reflect_ks.py"


rule origin:
    input:
        labels="results/pans/{model}.parquet",
        own="results/ks_own_reflect/{model}.parquet",
    output:
        "results/origin/{model}.parquet",
    params:
        theta=SETTINGS.theta,
    log:
        "results/logs/origin/{model}.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/origin.py"


rule pan_origin:
    input:
        per_model("results/origin/{model}.parquet"),
    output:
        report("results/tables/pan_origin.csv", caption="../report/pan_origin.rst", category="Beyond the paper"),
    params:
        models=MODELS,
    log:
        "results/logs/tables/pan_origin.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/pan_origin.py"
