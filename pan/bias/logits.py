"""The on-disk format of a model variant's outputs: one Parquet file, one row per image.

Columns of ``results/eval/{model}/{variant}.parquet``:

- ``sample`` (int32): the image's position in the evaluation set;
- ``id`` (string): the image id (see :mod:`pan.capture.images`);
- ``label`` (string, null if unknown): the image's folder label (e.g. an ImageNet synset id);
- ``class_index`` (int32, null if unknown) and ``class_name`` (string, null if unknown): the
  true class (see :mod:`pan.capture.classes`);
- ``logits`` (fixed_size_list<float32>[num_classes]): the model's raw outputs, flattened when
  an image's output is not a vector (a dense model's ``(channels, height, width)`` maps).

Schema metadata: ``model``, ``variant``, ``num_classes`` (values per image),
``output_shape`` (JSON list: one image's output shape; absent in older files: ``[num_classes]``)
and ``categories`` (JSON list of class names, or ``null``). This module needs no torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["LogitWriter", "Logits", "ROWS_PER_GROUP", "read_logits"]

ROWS_PER_GROUP = 4096


@dataclass(frozen=True)
class Logits:
    """One variant's outputs over the evaluation images."""

    model: str
    variant: str
    ids: list[str]
    class_index: np.ndarray | None
    """True class per image (int64), or ``None`` when labels are unknown."""
    logits: np.ndarray
    """``(images, classes)`` float32."""
    categories: list[str] | None
    output_shape: tuple[int, ...] = ()
    """One image's output shape (``()``: ``(num_classes,)``, a classifier's)."""

    @property
    def num_classes(self) -> int:
        return self.logits.shape[1]

    @property
    def is_classifier(self) -> bool:
        """Whether each image's output is a vector of class scores (not a dense map)."""
        return len(self.output_shape) <= 1

    def class_name(self, index: int) -> str | None:
        return self.categories[index] if self.categories else None


class LogitWriter:
    """Appends batches of logits to one variant's file, a row group every few thousand images."""

    def __init__(
        self,
        path: str | Path,
        model: str,
        variant: str,
        num_classes: int,
        categories: Sequence[str] | None,
        output_shape: Sequence[int] | None = None,
    ) -> None:
        self.schema = pa.schema(
            [
                ("sample", pa.int32()),
                ("id", pa.string()),
                ("label", pa.string()),
                ("class_index", pa.int32()),
                ("class_name", pa.string()),
                ("logits", pa.list_(pa.float32(), num_classes)),
            ],
            metadata={
                "model": model,
                "variant": variant,
                "num_classes": str(num_classes),
                "categories": json.dumps(list(categories) if categories else None),
                "output_shape": json.dumps([int(n) for n in (output_shape or (num_classes,))]),
            },
        )
        self.writer = pq.ParquetWriter(path, self.schema)
        self.pending: list[pa.Table] = []

    def write(
        self,
        first_sample: int,
        ids: Sequence[str],
        labels: Sequence[str | None],
        class_index: Sequence[int | None],
        class_name: Sequence[str | None],
        logits: np.ndarray,
    ) -> None:
        """Append ``logits`` ``(images, classes)`` of the images ``first_sample, first_sample + 1, ...``."""
        n, c = logits.shape
        values = pa.array(np.ascontiguousarray(logits, dtype=np.float32).reshape(-1))
        self.pending.append(
            pa.Table.from_arrays(
                [
                    pa.array(np.arange(first_sample, first_sample + n, dtype=np.int32)),
                    pa.array(list(ids), pa.string()),
                    pa.array(list(labels), pa.string()),
                    pa.array(list(class_index), pa.int32()),
                    pa.array(list(class_name), pa.string()),
                    pa.FixedSizeListArray.from_arrays(values, c),
                ],
                schema=self.schema,
            )
        )
        if sum(t.num_rows for t in self.pending) >= ROWS_PER_GROUP:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending))
            self.pending = []

    def __enter__(self) -> LogitWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.flush()
        self.writer.close()


def read_logits(path: str | Path) -> Logits:
    """Read a variant's outputs back, in sample order."""
    table = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    table = table.sort_by("sample")
    num_classes = int(meta["num_classes"])
    column = table.column("logits")
    flat = column.combine_chunks().flatten() if table.num_rows else pa.array([], pa.float32())
    logits = flat.to_numpy(zero_copy_only=False).reshape(table.num_rows, num_classes)
    class_index = table.column("class_index")
    known = table.num_rows > 0 and class_index.null_count == 0
    return Logits(
        model=meta["model"],
        variant=meta["variant"],
        ids=table.column("id").to_pylist(),
        class_index=class_index.to_numpy().astype(np.int64) if known else None,
        logits=logits,
        categories=json.loads(meta["categories"]),
        output_shape=tuple(json.loads(meta.get("output_shape", "[]"))),
    )
