rule label_pans:
    input:
        lambda wildcards: expand(
            "results/ks/{model}/{layer}.parquet",
            model=wildcards.model,
            layer=analysed_layer_names(wildcards),
        ),
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
