# What a user takes away besides the tables: where each model pads unevenly (static, no
# images) and its PAN-free variants as standalone torch.export artefacts.
EXPORTED_VARIANTS = ["pan_reflect", "reflect"]


rule padding_audit:
    input:
        weights=model_weights,
    output:
        audit=report(
            "results/tables/padding_audit_{model}.csv",
            caption="../report/padding_audit.rst",
            category="Padding audit",
        ),
        scan="results/tables/padding_scan_{model}.csv",
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
    log:
        "results/logs/padding_audit/{model}.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/padding_audit.py"


rule export_variant:
    input:
        labels="results/pans/{model}.parquet",
        shapes=lambda wildcards: (
            reflect_shapes(wildcards) if wildcards.variant != "original" else f"results/shapes/{wildcards.model}.json"
        ),
        weights=model_weights,
    output:
        model="results/models/{model}_{variant}.pt2",
        provenance="results/models/{model}_{variant}.json",
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        rand_seed=SETTINGS.rand_seed,
    log:
        "results/logs/export/{model}_{variant}.log",
    wildcard_constraints:
        variant="|".join(VARIANTS),
    resources:
        mem_mb=dump_mem_mb,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/export_variant.py"


rule take_away:
    input:
        expand("results/tables/padding_audit_{model}.csv", model=MODELS),
        expand("results/models/{model}_{variant}.pt2", model=MODELS, variant=EXPORTED_VARIANTS),
