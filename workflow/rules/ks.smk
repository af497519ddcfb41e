rule ks_layer:
    input:
        "results/activations/{model}/{layer}.parquet",
    output:
        "results/ks/{model}/{layer}.parquet",
    log:
        "results/logs/ks/{model}/{layer}.log",
    benchmark:
        "results/benchmarks/ks/{model}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=lambda wildcards, input, attempt: ks_job_mem_mb(input[0]) * attempt,
        runtime=lambda wildcards, attempt: 10 * attempt,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/score_layer.py"
