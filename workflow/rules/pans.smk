rule label_pans:
    input:
        ks_tables,
    output:
        "results/pans/{model}.parquet",
    params:
        theta=SETTINGS.theta,
    log:
        "results/logs/pans/{model}.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/label_pans.py"
