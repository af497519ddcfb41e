checkpoint activations:
    output:
        directory("results/activations/{model}"),
    params:
        model=lambda wildcards: config["models"][wildcards.model],
        images=config["images"],
        device=config["device"],
        micro_batch=config["micro_batch"],
    log:
        "results/logs/activations/{model}.log",
    benchmark:
        "results/benchmarks/activations/{model}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wildcards, attempt: activation_mem_mb(wildcards.model) * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu=config["gpus"],
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/dump_activations.py"
