# Figures of the paper and beyond, as interactive HTML and PNG (PNGs go into the report).
# Per model: results/figures/{model}/<figure>.{html,png}; per neuron slot (pan/selection.py):
# results/figures/{model}/neurons/{slot}/<figure>.{html,png}. Only figures fed by the PAN
# labels re-render when theta changes. Adding a model figure is one row of MODEL_FIGURES
# (and its writer in pan.figures.MODEL_FIGURES).

MODEL_FIGURES = {  # figure: (input, report subcategory, report label)
    "ks_distributions": (ks_tables, "Layers and θ", "Fig. 4: KS distributions"),
    "theta_sweep": (ks_tables, "Layers and θ", "PANs and edge detectors against θ"),
    "pan_depth": ("results/pans/{model}.parquet", "Layers and θ", "PAN share by depth"),
    "log_odds": ("results/tables/odds_{model}.csv", "Padding bias", "Fig. 9: ordered log-odds"),
    "log_odds_histogram": ("results/tables/odds_{model}.csv", "Padding bias", "Fig. 10: log-odds histograms"),
}
NEURON_FIGURES = {  # figure: report subcategory
    "activation_pdfs": "Fig. 3: border and centre PDFs",
    "truncated_centre": "Fig. 5: truncated centres",
    "card": "Figs. 6-8: PAN cards",
}


rule figures:
    input:
        expand("results/figures/{model}/{figure}.{ext}", model=MODELS, figure=MODEL_FIGURES, ext=["html", "png"]),
        [
            f"results/figures/{model}/neurons/{slot}/{figure}.{ext}"
            for model in MODELS
            for slot in SETTINGS.figures.slots(model)
            for figure in NEURON_FIGURES
            for ext in ("html", "png")
        ],


for figure, (source, subcategory, label) in MODEL_FIGURES.items():

    rule:
        name:
            figure
        input:
            source,
        output:
            **figure_outputs("", figure, subcategory, {"figure": label}),
        params:
            figure=figure,
        log:
            f"results/logs/figures/{{model}}/{figure}.log",
        conda:
            "../envs/pan.yaml"
        script:
            "../scripts/model_figure.py"


rule figure_neurons:
    input:
        labels="results/pans/{model}.parquet",
        ks=ks_tables,
    output:
        "results/figures/{model}/neurons.csv",
    params:
        top_pans=SETTINGS.figures.top_pans,
        top_edge_detectors=SETTINGS.figures.top_edge_detectors,
    log:
        "results/logs/figures/{model}/neurons.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/figure_neurons.py"


for figure in ("activation_pdfs", "truncated_centre"):

    rule:
        name:
            figure
        input:
            unpack(neuron_figure_inputs),
        output:
            **figure_outputs("neurons/{slot}/", figure, NEURON_FIGURES[figure], neuron_figure_labels),
        params:
            figure=figure,
        log:
            f"results/logs/figures/{{model}}/neurons/{{slot}}/{figure}.log",
        conda:
            "../envs/pan.yaml"
        script:
            "../scripts/neuron_figure.py"


rule card_reflect_maps:
    input:
        unpack(card_reflect_inputs),
        weights=model_weights,
    output:
        "results/figures/{model}/neurons/reflect_maps.npz",
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        images=SETTINGS.images,
        slots=lambda wildcards: SETTINGS.figures.slots(wildcards.model),
        device=SETTINGS.device,
        micro_batch=SETTINGS.micro_batch,
    log:
        "results/logs/figures/{model}/neurons/reflect_maps.log",
    benchmark:
        "results/benchmarks/figures/{model}/reflect_maps.tsv"
    threads: 2
    resources:
        mem_mb=dump_mem_mb,
        runtime=lambda wildcards, attempt: 15 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/card_reflect_maps.py"


rule pan_card:
    input:
        unpack(pan_card_inputs),
        reflect="results/figures/{model}/neurons/reflect_maps.npz",
        weights=model_weights,
    output:
        **figure_outputs("neurons/{slot}/", "card", NEURON_FIGURES["card"], neuron_figure_labels),
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        images=SETTINGS.images,
        heatmap_images=SETTINGS.figures.heatmap_images,
        device=SETTINGS.device,
        micro_batch=SETTINGS.micro_batch,
    log:
        "results/logs/figures/{model}/neurons/{slot}/card.log",
    benchmark:
        "results/benchmarks/figures/{model}/{slot}/card.tsv"
    threads: 2
    resources:
        mem_mb=dump_mem_mb,
        runtime=lambda wildcards, attempt: 15 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/pan_card.py"
