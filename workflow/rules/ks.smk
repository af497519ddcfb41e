# The KS tables of every run (the main run, controls, draws) and its record, by one function
# (pan.workflow.run_ks.score_run): from the run's dump where it keeps one, else from maps made and
# scored in memory in this job.
rule ks_scores:
    input:
        unpack(ks_input),
        weights=model_weights,
    output:
        ks=directory("results/{run}ks/{model}"),
        record="results/{run}dumps/{model}.json",
        interior="results/{run}interior/{model}.parquet",
    params:
        model=lambda wildcards: SETTINGS.models[wildcards.model],
        images=run_images_of,
        condition=lambda wildcards: run_condition(wildcards)[0],
        seed=run_seed,
        device=SETTINGS.device,
        ks_device=KS_DEVICE,
        micro_batch=SETTINGS.micro_batch,
        q=SETTINGS.share.q,
        # intervals and the interior null for the main run only: reruns skip their cost
        replicates=lambda wildcards: SETTINGS.bootstrap.replicates if not wildcards.run else 0,
        bootstrap_seed=SETTINGS.bootstrap.seed,
    log:
        "results/logs/{run}ks/{model}.log",
    benchmark:
        "results/benchmarks/{run}ks/{model}.tsv"
    threads: 2
    resources:
        mem_mb=ks_mem_mb,
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu=SETTINGS.gpus,
    conda:
        "../envs/pan.yaml"
    script:
        "../scripts/score_run.py"
