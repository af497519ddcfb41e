rule layer_shapes:
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


checkpoint activations:
    input:
        shapes="results/shapes/{model}.json",
    output:
        directory("results/activations/{model}"),
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        images=SETTINGS.images,
        device=SETTINGS.device,
        micro_batch=SETTINGS.micro_batch,
    log:
        "results/logs/activations/{model}.log",
    benchmark:
        "results/benchmarks/activations/{model}.tsv"
    threads: 2
    resources:
        mem_mb=dump_mem_mb,
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/dump_activations.py"
