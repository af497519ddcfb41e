"""Send a job's output (progress bars, messages, tracebacks) to its Snakemake log file."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

__all__ = ["image_progress", "log_to"]


@contextmanager
def log_to(path: str | Path) -> Iterator[None]:
    """Within the block, stdout, stderr and :mod:`logging` go to ``path``; errors too."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as log, redirect_stdout(log), redirect_stderr(log):
        logging.basicConfig(
            stream=log, level=logging.INFO, force=True, format="%(asctime)s %(levelname)s %(message)s"
        )
        try:
            yield
        except BaseException:
            traceback.print_exc(file=log)
            raise


def image_progress(total: int, desc: str, stream: TextIO | None = None) -> tqdm:
    """A progress bar in images/s, on ``stream`` or the ``sys.stderr`` of the moment (the job's
    log under :func:`log_to`; a default bound at import time would miss the redirection)."""
    return tqdm(total=total, unit="img", desc=desc, file=stream or sys.stderr, mininterval=5)
