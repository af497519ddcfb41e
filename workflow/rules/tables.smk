rule table1:
    input:
        per_model("results/pans/{model}.parquet"),
    output:
        report("results/tables/table1.csv", caption="../report/table1.rst", category="PANs"),
    params:
        models=MODELS,
    log:
        "results/logs/tables/table1.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/table1.py"


rule table2:
    input:
        per_model("results/pans/{model}.parquet"),
    output:
        report("results/tables/table2.csv", caption="../report/table2.rst", category="PANs"),
    params:
        models=MODELS,
    log:
        "results/logs/tables/table2.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/table2.py"


rule unscoreable_layers:
    input:
        per_model("results/shapes/{model}.json"),
    output:
        report("results/tables/unscoreable.csv", caption="../report/unscoreable.rst", category="PANs"),
    params:
        models=MODELS,
    log:
        "results/logs/tables/unscoreable.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/unscoreable_layers.py"
