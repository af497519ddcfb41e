"""The Snakemake layer: typed settings from ``config.yaml``, memory requests, and running the
workflow from Python.

- :mod:`pan.workflow.config`: the one route from ``config.yaml`` to every rule;
- :mod:`pan.workflow.resources`: memory requests of the heavy jobs, from layer shapes;
- :mod:`pan.workflow.allocator`: jobs keep the memory they free (glibc settings), for speed;
- :mod:`pan.workflow.run_ks`: the KS job of every run (main, controls, draws);
- :mod:`pan.workflow.run`: :func:`~pan.workflow.run.run_workflow` for tests and benchmarks.
"""
