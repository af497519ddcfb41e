rule label_pans:
    input:
        ks_tables,
    output:
        "results/pans/{model}.parquet",
    params:
        theta=config["theta"],
    log:
        "results/logs/pans/{model}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/label_pans.py"
