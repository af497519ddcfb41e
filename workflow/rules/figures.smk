# Figures of the paper and beyond, as interactive HTML and PNG (PNGs go into the report).
# Per model: results/figures/{model}/<figure>.{html,png}; per neuron slot (see
# pan/figures/selection.py): results/figures/{model}/neurons/{slot}/<figure>.{html,png}.
# Only figures fed by the PAN labels (neurons.csv, ranked slots, pan_depth, log-odds)
# re-render when theta changes; KS distributions, the theta sweep and configured neurons do not.
from pan.figures.selection import FigureSettings

FIGURES = FigureSettings.from_config(config.get("figures", {}), MODELS)
MODEL_FIGURES = ["ks_distributions", "theta_sweep", "pan_depth", "log_odds", "log_odds_histogram"]
NEURON_FIGURES = ["activation_pdfs", "truncated_centre", "card"]


wildcard_constraints:
    slot=r"[^/]+",


rule figures:
    input:
        expand(
            "results/figures/{model}/{figure}.{ext}",
            model=MODELS,
            figure=MODEL_FIGURES,
            ext=["html", "png"],
        ),
        [
            f"results/figures/{model}/neurons/{slot}/{figure}.{ext}"
            for model in MODELS
            for slot in FIGURES.slots(model)
            for figure in NEURON_FIGURES
            for ext in ("html", "png")
        ],


rule figure_neurons:
    input:
        labels="results/pans/{model}.parquet",
        ks=ks_tables,
    output:
        "results/figures/{model}/neurons.csv",
    params:
        top_pans=FIGURES.top_pans,
        top_edge_detectors=FIGURES.top_edge_detectors,
    log:
        "results/logs/figures/{model}/neurons.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/figure_neurons.py"


rule activation_pdfs:
    input:
        unpack(neuron_figure_inputs),
    output:
        html="results/figures/{model}/neurons/{slot}/activation_pdfs.html",
        png=report(
            "results/figures/{model}/neurons/{slot}/activation_pdfs.png",
            caption="../report/activation_pdfs.rst",
            category="{model}",
            subcategory="Fig. 3: border and centre PDFs",
            labels=neuron_figure_labels,
        ),
    log:
        "results/logs/figures/{model}/neurons/{slot}/activation_pdfs.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/activation_pdfs.py"


rule truncated_centre:
    input:
        unpack(neuron_figure_inputs),
    output:
        html="results/figures/{model}/neurons/{slot}/truncated_centre.html",
        png=report(
            "results/figures/{model}/neurons/{slot}/truncated_centre.png",
            caption="../report/truncated_centre.rst",
            category="{model}",
            subcategory="Fig. 5: truncated centres",
            labels=neuron_figure_labels,
        ),
    log:
        "results/logs/figures/{model}/neurons/{slot}/truncated_centre.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/truncated_centre.py"


rule pan_card:
    input:
        unpack(neuron_figure_inputs),
    output:
        html="results/figures/{model}/neurons/{slot}/card.html",
        png=report(
            "results/figures/{model}/neurons/{slot}/card.png",
            caption="../report/pan_card.rst",
            category="{model}",
            subcategory="Figs. 6-8: PAN cards",
            labels=neuron_figure_labels,
        ),
    params:
        model=lambda wildcards: config["models"][wildcards.model],
        images=config["images"],
        heatmap_images=FIGURES.heatmap_images,
        device=config["device"],
        micro_batch=config["micro_batch"],
    log:
        "results/logs/figures/{model}/neurons/{slot}/card.log",
    benchmark:
        "results/benchmarks/figures/{model}/{slot}/card.tsv"
    threads: 2
    resources:
        mem_mb=lambda wildcards, attempt: activation_mem_mb(wildcards.model) * attempt,
        runtime=lambda wildcards, attempt: 15 * attempt,
        gpu=config["gpus"],
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/pan_card.py"


rule ks_distributions:
    input:
        ks_tables,
    output:
        html="results/figures/{model}/ks_distributions.html",
        png=report(
            "results/figures/{model}/ks_distributions.png",
            caption="../report/ks_distributions.rst",
            category="{model}",
            subcategory="Layers and θ",
            labels={"figure": "Fig. 4: KS distributions"},
        ),
    log:
        "results/logs/figures/{model}/ks_distributions.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/ks_distributions.py"


rule theta_sweep:
    input:
        ks_tables,
    output:
        html="results/figures/{model}/theta_sweep.html",
        png=report(
            "results/figures/{model}/theta_sweep.png",
            caption="../report/theta_sweep.rst",
            category="{model}",
            subcategory="Layers and θ",
            labels={"figure": "PANs and edge detectors against θ"},
        ),
    log:
        "results/logs/figures/{model}/theta_sweep.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/theta_sweep.py"


rule pan_depth:
    input:
        "results/pans/{model}.parquet",
    output:
        html="results/figures/{model}/pan_depth.html",
        png=report(
            "results/figures/{model}/pan_depth.png",
            caption="../report/pan_depth.rst",
            category="{model}",
            subcategory="Layers and θ",
            labels={"figure": "PAN share by depth"},
        ),
    log:
        "results/logs/figures/{model}/pan_depth.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/pan_depth.py"


rule log_odds:
    input:
        "results/tables/odds_{model}.csv",
    output:
        html="results/figures/{model}/log_odds.html",
        png=report(
            "results/figures/{model}/log_odds.png",
            caption="../report/log_odds.rst",
            category="{model}",
            subcategory="Padding bias",
            labels={"figure": "Fig. 9: ordered log-odds"},
        ),
    log:
        "results/logs/figures/{model}/log_odds.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/log_odds.py"


rule log_odds_histogram:
    input:
        "results/tables/odds_{model}.csv",
    output:
        html="results/figures/{model}/log_odds_histogram.html",
        png=report(
            "results/figures/{model}/log_odds_histogram.png",
            caption="../report/log_odds_histogram.rst",
            category="{model}",
            subcategory="Padding bias",
            labels={"figure": "Fig. 10: log-odds histograms"},
        ),
    log:
        "results/logs/figures/{model}/log_odds_histogram.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/log_odds_histogram.py"
