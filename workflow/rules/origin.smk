# Nascent vs downstream PANs as a 2x2 (pan/beyond/origin.py): own x upstream padding, each zero
# or reflect, from two forward passes of the §3 batch per model, only the PANs' channels kept (the
# PANs of both rules, each rule labelling its own), with image-bootstrap intervals. It reads the
# labels, so a theta change reruns it (seconds to minutes per model), never a dump or a KS job.


rule origin:
    input:
        labels="results/pans/{model}.parquet",
        shapes=reflect_shapes,
        weights=model_weights,
    output:
        origin="results/origin/{model}.parquet",
        strengths="results/origin/{model}_strengths.parquet",
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        images=SETTINGS.images,
        theta=SETTINGS.theta,
        device=SETTINGS.device,
        micro_batch=SETTINGS.micro_batch,
        origin=SETTINGS.origin,
        q=SETTINGS.share.q,
    log:
        "results/logs/origin/{model}.log",
    benchmark:
        "results/benchmarks/origin/{model}.tsv"
    threads: 2
    resources:
        mem_mb=probe_mem_mb(len(ORIGIN_CONDITIONS)),
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/origin.py"


rule pan_origin:
    input:
        per_model("results/origin/{model}.parquet"),
    output:
        report("results/tables/pan_origin.csv", caption="../report/pan_origin.rst", category="Beyond the paper"),
    params:
        models=MODELS,
    log:
        "results/logs/tables/pan_origin.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/pan_origin.py"


rule origin_figure:
    input:
        "results/origin/{model}.parquet",
    output:
        **figure_outputs("", "origin_2x2", "Beyond the paper", {"figure": "Origin of each PAN border (2x2)"}),
    params:
        theta=SETTINGS.theta,
    log:
        "results/logs/figures/{model}/origin_2x2.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/origin_figure.py"
