# How far to trust the count (pan.trust.controls): the §3 method rerun on control conditions
# (results/controls/{condition}/...) and on seeded draws of the batch (results/stability/draw{k}/...),
# through the same dump, KS and labelling code as the main run. The runs' own dumps are
# temporary (deleted once scored): a θ change reruns labels and tables only.


rule run_activations:
    input:
        shapes=run_shapes,
    output:
        dump=temp(directory("results/{run}/activations/{model}")),
        record="results/{run}/dumps/{model}.json",
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        images=lambda wildcards: run_images(SETTINGS.images, wildcards.run),
        condition=lambda wildcards: parse_run(wildcards.run)[0],
        seed=lambda wildcards: SETTINGS.controls.seed if parse_run(wildcards.run)[0] == "random_init" else None,
        device=SETTINGS.device,
        micro_batch=SETTINGS.micro_batch,
    log:
        "results/logs/{run}/activations/{model}.log",
    benchmark:
        "results/benchmarks/{run}/activations/{model}.tsv"
    threads: 2
    resources:
        mem_mb=dump_mem_mb,
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/dump_run.py"


rule run_ks_scores:
    input:
        dump="results/{run}/activations/{model}",
        shapes="results/shapes/{model}.json",
    output:
        directory("results/{run}/ks/{model}"),
    params:
        device=KS_DEVICE,
        q=SETTINGS.share.q,  # no bootstrap and no interior null for the reruns: their cost
    log:
        "results/logs/{run}/ks/{model}.log",
    benchmark:
        "results/benchmarks/{run}/ks/{model}.tsv"
    threads: 2
    resources:
        mem_mb=run_ks_mem_mb,
        runtime=lambda wildcards, attempt: 20 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/score_dump.py"


rule run_label_pans:
    input:
        "results/{run}/ks/{model}",
    output:
        "results/{run}/pans/{model}.parquet",
    params:
        theta=SETTINGS.theta,
    log:
        "results/logs/{run}/pans/{model}.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/label_run.py"


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
