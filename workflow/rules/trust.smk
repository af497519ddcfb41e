# How far to trust the count (pan.trust.controls): the §3 method rerun on control conditions
# (results/controls/{condition}/...) and on seeded draws of the batch (results/stability/draw{k}/...),
# through the same KS and label rules as the main run (ks.smk, pans.smk). Their maps are scored
# in memory in the KS job, no dump written: a θ change reruns labels and tables only.


rule controls_table:
    input:
        labels=[path for model in MODELS for path in condition_labels(model).values()],
        records=[
            f"results/{control_run(condition)}/dumps/{model}.json"
            for model in MODELS
            for condition in SETTINGS.controls.conditions
            if condition != "trained"
        ],
    output:
        report("results/tables/controls.csv", caption="../report/controls.rst", category="How far to trust the count"),
    params:
        label_keys=[(model, condition) for model in MODELS for condition in SETTINGS.controls.conditions],
        record_keys=[
            (model, condition) for model in MODELS for condition in SETTINGS.controls.conditions if condition != "trained"
        ],
    log:
        "results/logs/tables/controls.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/controls_table.py"


rule stability:
    input:
        draws=lambda wildcards: draw_labels(wildcards.model),
        main="results/pans/{model}.parquet",
    output:
        "results/stability/{model}.parquet",
    log:
        "results/logs/stability/{model}.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/stability.py"


rule stability_table:
    input:
        lambda wildcards: [path for model in MODELS for path in draw_labels(model)],
    output:
        report("results/tables/stability.csv", caption="../report/stability.rst", category="How far to trust the count"),
    params:
        models=MODELS,
    log:
        "results/logs/tables/stability.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/stability_table.py"


rule controls_depth:
    input:
        lambda wildcards: condition_labels(wildcards.model).values(),
    output:
        **figure_outputs("", "controls_depth", "Controls", {"figure": "PAN share by depth per control"}),
    params:
        conditions=SETTINGS.controls.conditions,
    log:
        "results/logs/figures/{model}/controls_depth.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/controls_depth.py"


rule stability_histogram:
    input:
        "results/stability/{model}.parquet",
    output:
        **figure_outputs("", "stability_histogram", "Stability", {"figure": "PAN frequency over draws"}),
    params:
        draws=SETTINGS.stability.draws,
    log:
        "results/logs/figures/{model}/stability_histogram.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/stability_histogram.py"


rule trust:
    input:
        "results/tables/controls.csv",
        "results/tables/stability.csv",
        expand(
            "results/figures/{model}/{figure}.{ext}",
            model=MODELS,
            figure=["controls_depth", "stability_histogram"],
            ext=["html", "png"],
        ),
