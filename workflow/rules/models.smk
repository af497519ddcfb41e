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


# The provenance JSON is the declared output: beside it goes the .pt2, or, where torch.export
# cannot export the variant (onnx2torch graphs), its state dict (.state_dict.pt); which one is
# only known once torch.export has tried, and the JSON names it (artefact, export_error).
rule export_variant:
    input:
        labels="results/pans/{model}.parquet",
        shapes=lambda wildcards: (
            reflect_shapes(wildcards) if wildcards.variant != "original" else f"results/shapes/{wildcards.model}.json"
        ),
        weights=model_weights,
    output:
        provenance="results/models/{model}_{variant}.json",
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        artefact=lambda wildcards: f"results/models/{wildcards.model}_{wildcards.variant}.pt2",
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
        expand("results/models/{model}_{variant}.json", model=MODELS, variant=EXPORTED_VARIANTS),
