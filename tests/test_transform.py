"""pan's evaluation transform equals torchvision's to the bit, without importing torchvision."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from pan.capture.transform import EvalTransform, imagenet_categories

SIZES = [(300, 200), (200, 300), (256, 256), (257, 255), (224, 224), (1000, 296), (260, 999), (225, 2000)]
TRANSFORMS = [
    EvalTransform(224, 256, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    EvalTransform(224, 224, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    EvalTransform(260, 292, (127 / 255,) * 3, (128 / 255,) * 3),
    EvalTransform(96, 128, (0.5, 0.4, 0.3), (0.25, 0.2, 0.3), channel_order="bgr"),
]


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
def test_equals_torchvisions_compose_bit_for_bit(transform):
    rng = np.random.default_rng(0)
    for width, height in SIZES:
        if min(width, height) * transform.input_size > transform.resize_size * max(width, height):
            continue
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        ours, theirs = transform(image), transform.torchvision()(image)
        assert ours.dtype == theirs.dtype == torch.float32
        assert torch.equal(ours, theirs), (width, height)


def test_bgr_reverses_the_channels_before_normalising():
    image = Image.new("RGB", (8, 8), (10, 20, 30))
    out = EvalTransform(8, 8, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), channel_order="bgr")(image)
    assert out[:, 0, 0].mul(255).round().tolist() == [30.0, 20.0, 10.0]


def test_other_inputs_go_through_torchvision():
    transform = EvalTransform(24, 28, (0.5,), (0.5,))
    grey = Image.new("L", (40, 30), 77)
    assert torch.equal(transform(grey), transform.torchvision()(grey))
    with pytest.raises(TypeError, match="should be PIL Image"):  # torchvision's own refusal
        transform(torch.rand(3, 40, 30))


def test_a_zero_std_and_an_unknown_channel_order_are_refused():
    with pytest.raises(ValueError, match="zero"):
        EvalTransform(8, 8, (0.0,) * 3, (1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="channel_order"):
        EvalTransform(8, 8, (0.0,) * 3, (1.0,) * 3, channel_order="rbg")


def test_imagenet_categories_are_torchvisions():
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    assert imagenet_categories() == list(_IMAGENET_CATEGORIES)


def test_an_efficientnet_lite_job_does_not_import_torchvision():
    """The point of the module: a job that loads a Lite model and preprocesses images no longer
    pays torchvision's import (about 1.2 s each)."""
    code = (
        "import sys\n"
        "from PIL import Image\n"
        "from pan.capture.models import ModelSpec, load_model\n"
        "entry = {'source': 'efficientnet_lite', 'variant': 'lite0', 'pretrained': False}\n"
        "spec = ModelSpec.from_config('m', entry)\n"
        "loaded = load_model(spec)\n"
        "loaded.model(loaded.transform(Image.new('RGB', (300, 250))).unsqueeze(0))\n"
        "assert loaded.categories and len(loaded.categories) == 1000\n"
        "print('torchvision' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
