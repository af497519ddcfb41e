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


rule interior_null:
    input:
        interior=per_model("results/interior/{model}.parquet"),
        labels=per_model("results/pans/{model}.parquet"),
    output:
        report("results/tables/interior_null.csv", caption="../report/interior_null.rst", category="How far to trust the count"),
    params:
        models=MODELS,
        theta=SETTINGS.theta,
    log:
        "results/logs/tables/interior_null.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/interior_null.py"


rule rule_figures:
    input:
        ks=per_model("results/ks/{model}"),
        interior=per_model("results/interior/{model}.parquet"),
        table="results/tables/interior_null.csv",
    output:
        share_kept_html="results/figures/rules/share_kept.html",
        share_kept_png=report(
            "results/figures/rules/share_kept.png", caption="../report/share_kept.rst", category="How far to trust the count"
        ),
        interior_null_html="results/figures/rules/interior_null.html",
        interior_null_png=report(
            "results/figures/rules/interior_null.png",
            caption="../report/interior_null_figure.rst",
            category="How far to trust the count",
        ),
    params:
        models=MODELS,
    log:
        "results/logs/figures/rules.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/rule_figures.py"


rule rule_comparison:
    input:
        "results/tables/table1.csv",
        "results/tables/table2.csv",
        "results/tables/interior_null.csv",
        rules.rule_figures.output,
