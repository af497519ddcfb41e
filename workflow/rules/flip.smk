# Flip control (pan/beyond/flip.py): the §3 batch flipped left-right and top-bottom; a padding
# response stays at its border, a content response moves to the mirrored one. Three forward
# passes per model, only the PANs' channels kept (both rules' PANs, each rule judging its own); it reads
# the labels (a theta change reruns it).


rule flip_control:
    input:
        labels="results/pans/{model}.parquet",
        shapes="results/shapes/{model}.json",
        weights=model_weights,
    output:
        "results/flip/{model}.parquet",
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        images=SETTINGS.images,
        theta=SETTINGS.theta,
        device=SETTINGS.device,
        micro_batch=SETTINGS.micro_batch,
        origin=SETTINGS.origin,
        q=SETTINGS.share.q,
    log:
        "results/logs/flip/{model}.log",
    benchmark:
        "results/benchmarks/flip/{model}.tsv"
    threads: 2
    resources:
        mem_mb=probe_mem_mb(1 + len(FLIPS)),
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/flip_control.py"


rule flip_table:
    input:
        per_model("results/flip/{model}.parquet"),
    output:
        report(
            "results/tables/flip_control.csv", caption="../report/flip_control.rst", category="Beyond the paper"
        ),
    params:
        models=MODELS,
    log:
        "results/logs/tables/flip_control.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/flip_table.py"


rule flip_figure:
    input:
        "results/flip/{model}.parquet",
    output:
        **figure_outputs("", "flip_borders", "Beyond the paper", {"figure": "Flip control"}),
    params:
        theta=SETTINGS.theta,
    log:
        "results/logs/figures/{model}/flip_borders.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/flip_figure.py"
