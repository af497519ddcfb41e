"""Image labels to class indices, and the §4 image checks (pan.capture.classes)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import tiny_config, write_images

from pan.capture.classes import LabelError, check_eval_labels, class_indices, imagenet_wnids
from pan.capture.images import ImageSpec, image_records
from pan.workflow.run import run_workflow

TESTS = Path(__file__).parent


# --- image labels -> classes ------------------------------------------------------------------


def test_imagenet_wnids_are_the_standard_sorted_list():
    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and len(set(wnids)) == 1000 and list(wnids) == sorted(wnids)
    assert wnids[0] == "n01440764" and wnids[999] == "n15075141"


def test_class_indices_map_names_or_synsets_all_or_nothing(caplog):
    assert class_indices(["b", "a", "b"], ["a", "b"], 2) == [1, 0, 1]
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    assert class_indices(["n15075141", "tench"], list(_IMAGENET_CATEGORIES), 1000) == [999, 0]
    assert class_indices(["n15075141", "n01440764"], None, 1000) == [999, 0]
    assert class_indices(["a", "zebra"], ["a", "b"], 2) == [None, None]
    assert "zebra" in caplog.text
    assert class_indices([None, None], ["a", "b"], 2) == [None, None]


def test_imagenet_folders_must_be_synsets(tmp_path):
    write_images(tmp_path / "val", 4, classes=("n01440764", "n15075141"))
    spec = ImageSpec("imagenet", str(tmp_path), None, 0)
    check_eval_labels(spec, image_records(spec))  # torchvision's layout: root/val/<wnid>/
    write_images(tmp_path / "val", 3, classes=("n01440764", "cats", "dogs"))
    with pytest.raises(LabelError, match="cats"):
        check_eval_labels(spec, image_records(spec))


def test_evaluation_images_are_checked_when_section_4_is_requested(tmp_path, monkeypatch):
    from pan.workflow.config import checked_eval_images, load_settings
    from pan.workflow.sections import ConfigError

    monkeypatch.chdir(tmp_path)
    shutil.copy(TESTS / "tiny_net.py", "tiny_net.py")
    write_images(tmp_path / "images", 16)
    eval_images = {"source": "folder", "path": "images", "count": None, "seed": 0}
    settings = load_settings(tiny_config(eval_images=eval_images))
    assert checked_eval_images(settings.eval_images) == ImageSpec("folder", "images", None, 0)
    missing = load_settings(tiny_config(eval_images={**eval_images, "path": "missing"}))
    with pytest.raises(ConfigError, match="missing"):
        checked_eval_images(missing.eval_images)
    with pytest.raises(ConfigError, match="synset"):
        checked_eval_images(ImageSpec("imagenet", "images", None, 0))

    # Through the workflow: Tables 1-2 need no evaluation set; section 4 fails before any job.
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump(tiny_config(eval_images={**eval_images, "path": "missing"}))
    )
    assert run_workflow(tmp_path, "-n", "results/tables/table2.csv").returncode == 0
    failed = run_workflow(tmp_path, "-n", "results/tables/table3.csv", check=False)
    assert failed.returncode != 0 and "eval_images" in failed.stdout + failed.stderr
