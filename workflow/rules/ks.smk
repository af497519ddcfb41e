rule ks_layer:
    input:
        "results/activations/{model}/{layer}.parquet",
    output:
        "results/ks/{model}/{layer}.parquet",
    params:
        device=KS_DEVICE,
    log:
        "results/logs/ks/{model}/{layer}.log",
    benchmark:
        "results/benchmarks/ks/{model}/{layer}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wildcards, input, attempt: ks_job_mem_mb(input[0]) * attempt,
        runtime=lambda wildcards, attempt: 10 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/score_layer.py"
