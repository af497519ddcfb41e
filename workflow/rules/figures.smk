# Figures of the paper and beyond, as interactive HTML and PNG (PNGs go into the report).
# Per model: results/figures/{model}/<figure>.{html,png}; per neuron slot (pan/selection.py):
# results/figures/{model}/neurons/{slot}/<figure>.{html,png}. Only figures fed by the PAN
# labels re-render when theta changes (a model's neuron figures are one job, fed by them). Adding a model figure is one row of MODEL_FIGURES
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


# Every neuron figure of a model in one job (pan.figures.neurons): one start-up, one model
# load and one reflect pass for all its slots. A rule's outputs cannot depend on its wildcards,
# so models with the same slots share a rule: `neuron_figures` for the ranked slots alone (every
# model unless figures.neurons names some of its neurons), else `neuron_figures_{model}`.
SLOT_GROUPS = {}  # slots -> the models that have exactly these slots
for model in MODELS:
    SLOT_GROUPS.setdefault(tuple(SETTINGS.figures.slots(model)), []).append(model)

for slots, models in SLOT_GROUPS.items():

    rule:
        name:
            "neuron_figures" if list(slots) == SETTINGS.figures.ranked_slots() else f"neuron_figures_{models[0]}"
        wildcard_constraints:
            model="|".join(re.escape(name) for name in models),
        input:
            unpack(neuron_figures_inputs),
            weights=model_weights,
        output:
            **neuron_figure_outputs(slots),
        params:
            model=lambda wildcards: SETTINGS.models[wildcards.model],
            images=SETTINGS.images,
            slots=list(slots),
            heatmap_images=SETTINGS.figures.heatmap_images,
            device=SETTINGS.device,
            micro_batch=SETTINGS.micro_batch,
        log:
            "results/logs/figures/{model}/neuron_figures.log",
        benchmark:
            "results/benchmarks/figures/{model}/neuron_figures.tsv"
        threads: 2
        resources:
            mem_mb=dump_mem_mb,
            runtime=lambda wildcards, attempt: 15 * attempt,
            gpu=SETTINGS.gpus,
        conda:
            "../envs/pan.yaml"
        script:
            "../scripts/neuron_figures.py"
