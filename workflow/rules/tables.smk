rule table1:
    input:
        expand("results/pans/{model}.parquet", model=MODELS),
    output:
        report(
            "results/tables/table1.csv",
            caption="../report/table1.rst",
            category="PANs",
        ),
    log:
        "results/logs/tables/table1.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/table1.py"


rule table2:
    input:
        expand("results/pans/{model}.parquet", model=MODELS),
    output:
        report(
            "results/tables/table2.csv",
            caption="../report/table2.rst",
            category="PANs",
        ),
    log:
        "results/logs/tables/table2.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/table2.py"
