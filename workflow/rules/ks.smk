rule ks_scores:
    input:
        dump=dump_of,
    output:
        ks=directory("results/ks/{model}"),
        interior="results/interior/{model}.parquet",
    params:
        device=KS_DEVICE,
        q=SETTINGS.share.q,
        replicates=SETTINGS.bootstrap.replicates,
        seed=SETTINGS.bootstrap.seed,
    log:
        "results/logs/ks/{model}.log",
    benchmark:
        "results/benchmarks/ks/{model}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wildcards, input, attempt: ks_dump_mem_mb(input.dump) * attempt,
        runtime=lambda wildcards, attempt: 20 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/score_dump.py"
