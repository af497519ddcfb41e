# The PAN labels of every run (main run: results/pans/{model}.parquet).
rule label_pans:
    input:
        "results/{run}ks/{model}",
    output:
        "results/{run}pans/{model}.parquet",
    params:
        theta=SETTINGS.theta,
    log:
        "results/logs/{run}pans/{model}.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/label_run.py"
