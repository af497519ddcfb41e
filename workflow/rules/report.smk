# What the report shows (docs/outputs.md, "The report and the padding card"): one padding card
# per model (results/cards/{model}.{json,html}) and every table as an HTML table
# (results/report/tables/{table}.html), next to the figures' PNGs. `report_items` renders them
# for whatever has been run and lists every report item that exists, so that
#   snakemake --cores 2 report_items --report results/report.html --report-after-run
# builds the report of any partial run; nothing here starts an analysis beyond Table 2.

REPORT_TABLES = {  # table (CSV under results/tables/): (report subcategory, title, caption)
    "table1": ("PANs", "Table 1: PANs per layer", "table1"),
    "table2": ("PANs", "Table 2: PANs per type", "table2"),
    "unscoreable": ("PANs", "Layers too small to score", "unscoreable"),
    "controls": ("How far to trust the count", "Controls: random init and reflect", "controls"),
    "stability": ("How far to trust the count", "Stability over image draws", "stability"),
    "table3": ("Padding bias", "Table 3: classes whose odds move", "table3"),
    "sample_influence_summary": ("Padding bias", "Sample influence", "sample_influence_summary"),
    "pan_origin": ("Beyond the paper", "Origin of the PANs", "pan_origin"),
    "reach": ("Beyond the paper", "Padding reach", "reach"),
    "injection_summary": ("Beyond the paper", "Zero-line attack", "injection_summary"),
    "padding_audit_{model}": ("Padding audit", "Padding audit of {model}", "padding_audit"),
}
CARD_TABLES = {  # a card's table key (pan.report.card.SECTIONS) -> its CSV
    "table2": "results/tables/table2.csv",
    "controls": "results/tables/controls.csv",
    "stability": "results/tables/stability.csv",
    "pan_origin": "results/tables/pan_origin.csv",
    "reach": "results/tables/reach.csv",
    "table3": "results/tables/table3.csv",
    "sample_influence_summary": "results/tables/sample_influence_summary.csv",
    "injection_summary": "results/tables/injection_summary.csv",
    "padding_audit": "results/tables/padding_audit_{model}.csv",
}
# Per-model figures made by rules in other files (figure_outputs), besides MODEL_FIGURES.
OTHER_MODEL_FIGURES = ["controls_depth", "stability_histogram", "reach_depth", "injection_map"]


rule report_items:
    input:
        expand("results/cards/{model}.{ext}", model=MODELS, ext=["json", "html"]),
        "results/report/tables/table1.html",
        "results/report/tables/table2.html",
        existing_report_items,


rule padding_card:
    input:
        unpack(card_tables),
    output:
        json="results/cards/{model}.json",
        html=report(
            "results/cards/{model}.html",
            caption="../report/padding_card.rst",
            category="1. Padding cards",
            labels={"model": "{model}"},
        ),
    params:
        theta=SETTINGS.theta,
    log:
        "results/logs/report/card_{model}.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/padding_card.py"


for table, (subcategory, title, caption) in REPORT_TABLES.items():

    rule:
        name:
            f"report_{table.removesuffix('_{model}')}"
        input:
            f"results/tables/{table}.csv",
        output:
            report(
                f"results/report/tables/{table}.html",
                caption=f"../report/{caption}.rst",
                category="2. Tables",
                subcategory=subcategory,
                labels={"table": title},
            ),
        params:
            title=title,
        log:
            f"results/logs/report/{table}.log",
        conda:
            "../envs/pan.yaml"
        script:
            "../scripts/report_table.py"
