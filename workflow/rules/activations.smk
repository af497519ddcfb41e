rule layer_shapes:
    input:
        weights=model_weights,
    output:
        "results/shapes/{model}.json",
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
    log:
        "results/logs/shapes/{model}.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/layer_shapes.py"


# The activation dump of a run (results/{run}activations/{model}): made for the main run, whose
# KS job, figures and reach read it; other runs score their maps in memory (see ks.smk).
rule activations:
    input:
        shapes=run_shapes,
        weights=model_weights,
    output:
        directory("results/{run}activations/{model}"),
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        images=run_images_of,
        condition=lambda wildcards: run_condition(wildcards)[0],
        seed=run_seed,
        device=SETTINGS.device,
        micro_batch=SETTINGS.micro_batch,
    log:
        "results/logs/{run}activations/{model}.log",
    benchmark:
        "results/benchmarks/{run}activations/{model}.tsv"
    threads: 2
    resources:
        mem_mb=dump_mem_mb,
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/dump_run.py"
