"""Semantic checks of the workflow config, beyond its JSON schema, before any job runs.

The schema (``workflow/schemas/config.schema.yaml``) checks shapes and ranges; here we check
what needs the file system: builder files, state dicts, image folders that exist and hold
images. Relative paths resolve against the working directory Snakemake runs in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .classes import check_eval_labels
from .images import ImageSpec, image_records
from .labelling import check_theta
from .models import ModelSpec


class ConfigError(ValueError):
    """The config is inconsistent; the message says which key to fix."""


@dataclass(frozen=True)
class Settings:
    """The validated config."""

    models: dict[str, ModelSpec]
    images: ImageSpec
    theta: float
    eval_images: ImageSpec | None = None
    """Section 4's evaluation images (``eval_images``), when configured."""

    @staticmethod
    def layer_names(dump_dir: str | Path) -> list[str]:
        """Names of the layers in an activation dump, in depth order."""
        from .dumps import read_manifest

        return [layer["name"] for layer in read_manifest(dump_dir)["layers"]]


def checked_config(config: Mapping[str, Any]) -> Settings:
    """Build :class:`Settings` from a schema-valid config, or raise an error that says what to fix."""
    try:
        models = {name: ModelSpec.from_config(name, entry) for name, entry in config["models"].items()}
        images = ImageSpec.from_config(config["images"])
        image_records(images)  # missing or empty folders fail here, before any job
        theta = check_theta(config["theta"])
        eval_images = ImageSpec.from_config(config["eval_images"]) if config.get("eval_images") else None
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(f"invalid config: {error}") from error
    return Settings(models, images, theta, eval_images)


@lru_cache
def checked_eval_images(spec: ImageSpec) -> ImageSpec:
    """Section 4's images exist and their labels fit the models, or a :class:`ConfigError`.

    Checked when a section 4 output is requested (at DAG time, before any job), so a config
    whose evaluation set is not on disk still serves Tables 1 and 2.
    """
    try:
        check_eval_labels(spec, image_records(spec))
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(f"invalid config: eval_images: {error}") from error
    return spec


def activation_mem_mb(spec: ModelSpec, micro_batch: int) -> int:
    """A memory request (MB) for an activation dump job: interpreter and model, plus maps."""
    per_image = 4 * (spec.input_size / 224) ** 2 if spec.source == "python" else 40
    return int(1500 + micro_batch * per_image)
