"""Inference helpers (pan.capture.inference): exact float32 on CUDA, ordered threaded decoding, hooks."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from pan.capture.inference import PREFETCH_BATCHES, full_float32, preprocessed_batches


def precision() -> tuple[str, str]:
    return torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision


def test_full_float32_holds_inside_and_restores_the_users_setting_after():
    torch.backends.cudnn.conv.fp32_precision = "tf32"
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    try:
        with full_float32():
            assert precision() == ("ieee", "ieee")
        assert precision() == ("tf32", "tf32")
        with pytest.raises(RuntimeError), full_float32():
            raise RuntimeError("a failing forward pass")
        assert precision() == ("tf32", "tf32")
    finally:
        torch.backends.cudnn.conv.fp32_precision = "tf32"
        torch.backends.cuda.matmul.fp32_precision = "none"


class Counted:
    """An image record whose load is counted, to see how far decoding runs ahead."""

    loaded = 0

    def __init__(self, value: int):
        self.value = value

    def load(self) -> Image.Image:
        Counted.loaded += 1
        return Image.new("L", (4, 4), self.value)


def to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.full((1, 4, 4), float(image.getpixel((0, 0))))


@pytest.mark.parametrize("workers", [1, 4])
def test_threaded_decoding_keeps_the_order_and_a_bounded_lead(workers):
    records = [Counted(v) for v in range(23)]
    Counted.loaded = 0
    batches = preprocessed_batches(records, to_tensor, micro_batch=5, workers=workers)
    first = next(batches)
    assert first[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4]
    assert Counted.loaded <= 5 * (PREFETCH_BATCHES + 1)  # never the whole set ahead
    rest = list(batches)
    assert [len(b) for b in [first, *rest]] == [5, 5, 5, 5, 3]
    assert torch.cat([first, *rest])[:, 0, 0, 0].tolist() == list(range(23))
