"""Image decoding to 8-bit RGB for every PIL mode, and the minimum §3 batch (issue 10)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pan.capture.images import (
    MIN_BATCH_IMAGES,
    ImageReadError,
    ImageRecord,
    ImageSourceError,
    ImageSpec,
    check_batch,
    image_records,
    read_image,
    rgb_image,
)

COLOURS = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], dtype=np.uint8)


def _saved(image: Image.Image, path: Path) -> Path:
    image.save(path)
    with Image.open(path) as check:  # the file really holds the mode under test
        assert check.mode == image.mode or (image.mode, check.mode) == ("I;16L", "I;16")
    return path


def _rgb(path: Path) -> np.ndarray:
    image = read_image(path)
    assert image.mode == "RGB"
    return np.asarray(image)


def _grey(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.uint8)
    return np.repeat(values[..., None], 3, axis=2)


def test_sixteen_bit_png_scales_by_the_type_range_not_clipped_to_white(tmp_path):
    values = np.array([[0, 257, 32896, 65535, 128, 129]], dtype=np.uint16)
    path = _saved(Image.fromarray(values), tmp_path / "grey16.png")
    np.testing.assert_array_equal(_rgb(path), _grey([[0, 1, 128, 255, 0, 1]]))


def test_dark_sixteen_bit_image_stays_dark(tmp_path):
    values = np.array([[0, 1000, 2570]], dtype=np.uint16)  # by the image's max 2570 would be white
    np.testing.assert_array_equal(
        _rgb(_saved(Image.fromarray(values), tmp_path / "dark.png")), _grey([[0, 4, 10]])
    )


@pytest.mark.parametrize("mode, dtype", [("I;16B", ">u2"), ("I;16L", "<u2")])
def test_sixteen_bit_tiff_byte_orders(tmp_path, mode, dtype):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    image = Image.frombytes(mode, (4, 1), values.astype(dtype).tobytes())
    path = _saved(image, tmp_path / "grey16.tif")
    np.testing.assert_array_equal(_rgb(path), _grey([[0, 1, 128, 255]]))


def test_sixteen_bit_native_order_in_memory():
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    image = Image.frombytes("I;16N", (4, 1), values.astype("=u2").tobytes())
    np.testing.assert_array_equal(np.asarray(rgb_image(image)), _grey([[0, 1, 128, 255]]))


def test_thirty_two_bit_integer_within_sixteen_bits_scales_as_sixteen_bit(tmp_path):
    image = Image.fromarray(np.array([[0, 257, 32896, 65535]], dtype=np.int32))
    assert image.mode == "I"
    np.testing.assert_array_equal(_rgb(_saved(image, tmp_path / "int.tif")), _grey([[0, 1, 128, 255]]))


def test_sixteen_bit_pgm_opens_as_I_and_scales(tmp_path):
    path = tmp_path / "grey16.pgm"
    path.write_bytes(b"P5\n3 1\n65535\n" + np.array([0, 32896, 65535], dtype=">u2").tobytes())
    with Image.open(path) as image:
        assert image.mode in ("I", "I;16", "I;16B")
    np.testing.assert_array_equal(_rgb(path), _grey([[0, 128, 255]]))


@pytest.mark.parametrize("values, shown", [([-5, 0, 10], "-5..10"), ([0, 70000, 3], "0..70000")])
def test_thirty_two_bit_integer_outside_sixteen_bits_is_refused(tmp_path, values, shown):
    path = _saved(Image.fromarray(np.array([values], dtype=np.int32)), tmp_path / "int.tif")
    with pytest.raises(ImageReadError) as error:
        read_image(path)
    assert str(error.value) == (
        f"cannot read image {path}: mode 'I' (32-bit integer) with values {shown}; pan reads 32-bit "
        "integer images only within 0..65535 (scaled as 16-bit): save it as an 8-bit or 16-bit image"
    )


def test_float_within_unit_range_scales_by_255(tmp_path):
    image = Image.fromarray(np.array([[0.0, 0.5, 1.0, 0.25]], dtype=np.float32))
    np.testing.assert_array_equal(_rgb(_saved(image, tmp_path / "unit.tif")), _grey([[0, 128, 255, 64]]))


def test_float_within_byte_range_is_kept(tmp_path):
    image = Image.fromarray(np.array([[0.0, 1.5, 128.0, 254.6, 255.0]], dtype=np.float32))
    np.testing.assert_array_equal(_rgb(_saved(image, tmp_path / "byte.tif")), _grey([[0, 2, 128, 255, 255]]))


@pytest.mark.parametrize(
    "values, shown", [([-0.5, 0.5], "-0.5..0.5"), ([0.0, 300.0], "0..300"), ([0.0, np.nan], "nan..nan")]
)
def test_float_outside_both_ranges_is_refused(tmp_path, values, shown):
    path = _saved(Image.fromarray(np.array([values], dtype=np.float32)), tmp_path / "float.tif")
    with pytest.raises(ImageReadError) as error:
        read_image(path)
    assert str(error.value) == (
        f"cannot read image {path}: mode 'F' (32-bit float) with values {shown}; pan reads float images "
        "only within [0, 1] (scaled by 255) or [0, 255]: save it as an 8-bit image"
    )


def test_bilevel(tmp_path):
    image = Image.fromarray(np.array([[0, 255, 0, 255]], dtype=np.uint8)).convert("1")
    np.testing.assert_array_equal(_rgb(_saved(image, tmp_path / "bw.png")), _grey([[0, 255, 0, 255]]))


def test_grey(tmp_path):
    image = Image.fromarray(np.array([[0, 1, 128, 255]], dtype=np.uint8))
    np.testing.assert_array_equal(_rgb(_saved(image, tmp_path / "grey.png")), _grey([[0, 1, 128, 255]]))


def test_grey_alpha_drops_the_alpha(tmp_path):
    grey = np.array([[7, 200, 90]], dtype=np.uint8)
    alpha = np.array([[0, 128, 255]], dtype=np.uint8)
    image = Image.fromarray(np.stack([grey, alpha], axis=2), "LA")
    np.testing.assert_array_equal(_rgb(_saved(image, tmp_path / "la.png")), _grey([[7, 200, 90]]))


def _palette(transparency: int | None) -> Image.Image:
    image = Image.new("P", (3, 1))
    image.putpalette([10, 20, 30, 200, 100, 50, 0, 0, 0])
    image.putdata([0, 1, 0])
    if transparency is not None:
        image.info["transparency"] = transparency
    return image


@pytest.mark.parametrize("transparency", [None, 0])
def test_palette_with_and_without_transparency_keeps_palette_colours(tmp_path, transparency):
    path = tmp_path / "p.png"
    _palette(transparency).save(path)
    with Image.open(path) as image:
        assert image.mode == "P" and ("transparency" in image.info) == (transparency is not None)
    expected = np.array([[[10, 20, 30], [200, 100, 50], [10, 20, 30]]], dtype=np.uint8)
    np.testing.assert_array_equal(_rgb(path), expected)


def test_palette_alpha_drops_the_alpha(tmp_path):
    image = _palette(None).convert("PA")
    image.putalpha(Image.fromarray(np.array([[0, 255, 9]], dtype=np.uint8)))
    assert image.mode == "PA"
    expected = np.array([[[10, 20, 30], [200, 100, 50], [10, 20, 30]]], dtype=np.uint8)
    np.testing.assert_array_equal(_rgb(_saved(image, tmp_path / "pa.tif")), expected)


def test_rgb(tmp_path):
    np.testing.assert_array_equal(_rgb(_saved(Image.fromarray(COLOURS), tmp_path / "rgb.png")), COLOURS)


def test_rgba_drops_the_alpha(tmp_path):
    alpha = np.array([[[0], [64], [128], [255]]], dtype=np.uint8)
    image = Image.fromarray(np.concatenate([COLOURS, alpha], axis=2), "RGBA")
    np.testing.assert_array_equal(_rgb(_saved(image, tmp_path / "rgba.png")), COLOURS)


def test_cmyk(tmp_path):
    cmyk = np.array([[[0, 255, 255, 0], [0, 0, 0, 255], [0, 0, 0, 0], [255, 0, 128, 0]]], dtype=np.uint8)
    image = Image.frombytes("CMYK", (4, 1), cmyk.tobytes())
    expected = np.array([[[255, 0, 0], [0, 0, 0], [255, 255, 255], [0, 255, 127]]], dtype=np.uint8)
    np.testing.assert_array_equal(_rgb(_saved(image, tmp_path / "cmyk.tif")), expected)


def test_ycbcr(tmp_path):
    ycbcr = np.array([[[0, 128, 128], [255, 128, 128], [128, 128, 128]]], dtype=np.uint8)
    image = Image.frombytes("YCbCr", (3, 1), ycbcr.tobytes())
    np.testing.assert_array_equal(_rgb(_saved(image, tmp_path / "ycbcr.tif")), _grey([[0, 255, 128]]))


def test_lab(tmp_path):
    lab = np.array([[[0, 0, 0], [255, 0, 0], [128, 0, 0]]], dtype=np.uint8)  # PIL's a/b: 0 is neutral
    image = Image.frombytes("LAB", (3, 1), lab.tobytes())
    expected = np.array([[[0, 0, 0], [254, 255, 254], [119, 119, 119]]])  # PIL's own conversion,
    rgb = _rgb(_saved(image, tmp_path / "lab.tif"))  # float colour maths: within 1 of these values
    np.testing.assert_allclose(rgb.astype(int), expected, rtol=0, atol=1)


def test_hsv_in_memory():  # no file format stores HSV, but a reader plugin could hand one over
    hsv = np.array([[[0, 255, 255], [85, 255, 255], [0, 0, 77]]], dtype=np.uint8)
    image = Image.frombytes("HSV", (3, 1), hsv.tobytes())
    expected = np.array([[[255, 0, 0], [0, 255, 0], [77, 77, 77]]], dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(rgb_image(image)), expected)


def test_undecodable_file_names_the_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match=f"^cannot read image {path}: cannot identify image file"):
        read_image(path)


def test_premultiplied_grey_alpha_drops_the_alpha():
    np.testing.assert_array_equal(np.asarray(rgb_image(Image.new("La", (1, 1)), "x.png")), _grey([[0]]))


class _FakeMode:
    """An image of a mode pan does not know (as a third-party reader plugin might yield)."""

    mode = "BGR;24"
    info: dict = {}


def test_unknown_mode_is_refused():
    with pytest.raises(ImageReadError) as error:
        rgb_image(_FakeMode(), "x.png")
    assert str(error.value) == (
        "cannot read image x.png: unsupported PIL mode 'BGR;24'; save it as an 8-bit RGB or grey image"
    )


def _records(count: int) -> list[ImageRecord]:
    return [ImageRecord(f"img_{i}", None, lambda: None) for i in range(count)]


def test_min_batch_images_is_eight():
    assert MIN_BATCH_IMAGES == 8


def test_check_batch_returns_the_records():
    records = _records(8)
    assert check_batch(records, 8) is records
    assert check_batch(records, None) is records
    assert check_batch(_records(20), 16, "images") is not None


@pytest.mark.parametrize("count", [1, 2, 7])
def test_check_batch_refuses_fewer_than_the_minimum(count):
    with pytest.raises(ImageSourceError) as error:
        check_batch(_records(count), count, "images")
    assert str(error.value) == (
        f"images: only {count} images ({count} asked for), fewer than the 8 the analysis needs (with "
        "fewer, a border's KS statistic reflects a handful of images and most neurons look like PANs); "
        "give images a source with at least 8 images and set images.count to 8 or more"
    )


def test_check_batch_refuses_a_small_folder_without_a_count():
    with pytest.raises(ImageSourceError) as error:
        check_batch(_records(3), None, "images")
    assert str(error.value).startswith("images: only 3 images, fewer than the 8 the analysis needs")


def test_check_batch_refuses_a_folder_with_fewer_images_than_asked_for():
    with pytest.raises(ImageSourceError) as error:
        check_batch(_records(12), 64, "eval_images")
    assert str(error.value) == (
        "eval_images: the source holds only 12 images but 64 are asked for; "
        "set eval_images.count to 12 or fewer, or add images"
    )


def test_check_batch_minimum_can_be_lowered_for_evaluation_images():
    records = _records(1)
    assert check_batch(records, 1, "eval_images", minimum=1) is records


def test_hidden_files_and_folders_are_no_images_and_no_classes(tmp_path):
    """A notebook's .ipynb_checkpoints/ (copies of the images) and macOS's ._ files would add
    duplicates to the batch and a bogus class that drops every section 4 label."""
    from conftest import write_images

    write_images(tmp_path, 8)
    write_images(tmp_path / ".ipynb_checkpoints", 4)
    Image.new("RGB", (32, 32)).save(tmp_path / "a" / "._img_000.png")
    records = image_records(ImageSpec("folder", str(tmp_path), None))
    assert len(records) == 8
    assert {r.label for r in records} == {"a", "b"}


def test_images_of_different_shapes_after_the_transform_are_named():
    import torch

    from pan.capture.inference import ImageShapeError, preprocessed_batches

    landscape, portrait = Image.new("RGB", (48, 32)), Image.new("RGB", (32, 48))
    images = [
        ImageRecord(f"photo{i}", None, lambda image=image: image)
        for i, image in enumerate([landscape, landscape, portrait])
    ]
    keep_aspect = lambda image: torch.zeros(3, image.height, image.width)  # noqa: E731
    for micro_batch in (1, 3):  # across micro-batches and within one
        with pytest.raises(ImageShapeError, match="'photo0' and 'photo2' have different shapes"):
            list(preprocessed_batches(images, keep_aspect, micro_batch, workers=1))
