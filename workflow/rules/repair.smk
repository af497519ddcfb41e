# Repair (pan/repair/): a student built from a model (the teacher) by a strategy, distilled
# towards the unchanged teacher on its own images (repair.images). Plain swaps and students
# re-enter every other rule as models under derived names ({teacher}.swapped-{strategy},
# {teacher}.repaired-{strategy}); their weights come from here. Only pan_reflect reads the
# teacher's labels, so a theta change reruns only that strategy's repair.


rule repair_swap:
    input:
        unpack(swap_input),
    output:
        "results/repair/{teacher}/{strategy}/swapped.pt",
    params:
        teacher=lambda wildcards: SETTINGS.models[wildcards.teacher],
    priority: 10
    log:
        "results/logs/repair/{teacher}/{strategy}_swap.log",
    wildcard_constraints:
        **repair_constraints(),
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/repair_swap.py"


rule repair_train:
    input:
        "results/repair/{teacher}/{strategy}/swapped.pt",
    output:
        student="results/repair/{teacher}/{strategy}/student.pt",
        curve="results/repair/{teacher}/{strategy}/curve.parquet",
        provenance="results/repair/{teacher}/{strategy}/provenance.json",
    params:
        swapped=lambda wildcards: swap_spec(SETTINGS.models[wildcards.teacher], wildcards.strategy),
        settings=SETTINGS.repair.distill(),
        device=SETTINGS.device,
    priority: 10
    log:
        "results/logs/repair/{teacher}/{strategy}.log",
    benchmark:
        "results/benchmarks/repair/{teacher}/{strategy}.tsv"
    wildcard_constraints:
        **repair_constraints(),
    threads: 2
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/repair_train.py"


rule repair_export:
    input:
        student="results/repair/{teacher}/{strategy}/student.pt",
        provenance="results/repair/{teacher}/{strategy}/provenance.json",
    output:
        model="results/repair/{teacher}/{strategy}/student.pt2",
        provenance="results/repair/{teacher}/{strategy}/student.json",
    params:
        model=lambda wildcards: SETTINGS.models[repaired_name(wildcards.teacher, wildcards.strategy)],
    log:
        "results/logs/repair/{teacher}/{strategy}_export.log",
    wildcard_constraints:
        **repair_constraints(),
    resources:
        mem_mb=lambda wildcards, attempt: 3000 * attempt,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/repair_export.py"


rule repair_figure:
    input:
        expand("results/repair/{{teacher}}/{strategy}/curve.parquet", strategy=REPAIR_STRATEGIES),
    output:
        html="results/figures/{teacher}/repair.html",
        png=report(
            "results/figures/{teacher}/repair.png",
            caption="../report/repair_curve.rst",
            category="Repair",
            labels={"model": "{teacher}", "figure": "loss and held-out fidelity"},
        ),
    params:
        strategies=REPAIR_STRATEGIES,
    log:
        "results/logs/figures/{teacher}/repair.log",
    wildcard_constraints:
        teacher=repair_constraints()["teacher"],
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/repair_figure.py"


rule repair_table:
    input:
        repair_table_input,
    output:
        report("results/tables/repair.csv", caption="../report/repair.rst", category="Repair"),
    params:
        rows=repair_table_rows,
    log:
        "results/logs/tables/repair.log",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/repair_table.py"


rule compare_models:
    input:
        a=lambda wildcards: f"results/pans/{COMPARE_PAIRS[wildcards.pair][0]}.parquet",
        b=lambda wildcards: f"results/pans/{COMPARE_PAIRS[wildcards.pair][1]}.parquet",
    output:
        report("results/tables/compare_{pair}.csv", caption="../report/compare.rst", category="Repair"),
    params:
        names=lambda wildcards: COMPARE_PAIRS[wildcards.pair],
    log:
        "results/logs/tables/compare_{pair}.log",
    wildcard_constraints:
        pair="|".join(re.escape(p) for p in COMPARE_PAIRS) or "(?!)",
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/compare_models.py"


rule repair:
    input:
        repair_targets,


rule compare:
    input:
        expand("results/tables/compare_{pair}.csv", pair=list(COMPARE_PAIRS)),
