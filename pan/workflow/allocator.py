"""The memory allocator settings of the workflow's jobs: freed memory is kept for reuse.

glibc hands blocks from 128 kB up to a threshold it raises as it goes to ``mmap``, and trims
the top of its heap once twice that threshold is free. A forward pass frees every activation
it made, so the next pass faulted the same pages in again from the kernel. With
:data:`JOB_TUNABLES`, micro-batches of 4 images run EfficientNet-Lite0-2 1.3-1.6x faster on 2
cores, logits bit-identical (``benchmarks/allocator.py``). The Snakefile puts these settings
into the environment of every job it starts (:func:`set_job_tunables`); systems without glibc
ignore them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

__all__ = ["JOB_TUNABLES", "job_tunables", "restart_with_job_tunables", "set_job_tunables"]

JOB_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"
"""Blocks up to 32 MiB (glibc's largest threshold) come from the heap, whose top is given back
to the system only once 1 GiB of it is free. Setting either also stops glibc from moving the
other as it goes."""


def job_tunables(current: str | None = None) -> str:
    """``GLIBC_TUNABLES`` for a job: :data:`JOB_TUNABLES`, then ``current`` (the user's own
    settings, which come later and so win where both set the same tunable); ``current`` as it
    is when it holds them already (a job that parses the Snakefile again)."""
    if current and JOB_TUNABLES in current:
        return current
    return ":".join(filter(None, [JOB_TUNABLES, current]))


def set_job_tunables(environ: MutableMapping[str, str] = os.environ) -> None:
    """Give the processes started from ``environ`` (the workflow's jobs) :func:`job_tunables`;
    the process that calls it keeps the allocator it started with."""
    environ["GLIBC_TUNABLES"] = job_tunables(environ.get("GLIBC_TUNABLES"))


def restart_with_job_tunables() -> None:
    """Start this Python process again, with the same arguments, under :func:`job_tunables`,
    unless it runs under them already (glibc reads them only at start): for benchmarks that
    time what a job does."""
    if JOB_TUNABLES in os.environ.get("GLIBC_TUNABLES", ""):
        return
    environ = dict(os.environ)
    set_job_tunables(environ)
    os.execve(sys.executable, sys.orig_argv, environ)
