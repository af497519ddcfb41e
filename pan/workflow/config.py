"""The workflow's typed settings: the one route from ``config.yaml`` to every rule.

:func:`load_settings` turns a config mapping into :class:`Settings` in three steps, each failing
before any job with a message that says what to fix:

1. unknown keys, at every level, are refused with the closest known key (a typo such as
   ``thetaa`` would otherwise run silently with the default);
2. the JSON schema (``workflow/schemas/config.schema.yaml``) checks types and ranges;
3. the semantic checks here need the file system: builder files, state dicts, image folders.

Every default is stated once, as a default of the dataclasses below (or the constant of the
module that owns the concept); the schema and ``config.yaml`` state none. Rules draw their
``params`` from :class:`Settings`, so a changed setting reruns exactly the jobs that read it.
Relative paths resolve against the working directory Snakemake runs in.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import Any

from pan.bias.odds import DEFAULT_ODDS_THRESHOLD
from pan.capture.classes import check_eval_labels
from pan.capture.images import ImageSpec, check_batch, image_records
from pan.capture.inference import DEFAULT_MICRO_BATCH
from pan.capture.models import ModelSpec
from pan.core.labelling import DEFAULT_THETA, check_theta
from pan.repair.names import derived_specs
from pan.repair.settings import CompareSettings, RepairSettings, check_no_overlap
from pan.workflow.sections import (
    BootstrapSettings,
    ConfigError,
    ConfiguredNeuron,
    ControlSettings,
    FigureSettings,
    InjectionSettings,
    NoiseSettings,
    OriginSettings,
    OutputSettings,
    ReachSettings,
    ShareSettings,
    StabilitySettings,
)

__all__ = [
    "RENAMED_KEYS",
    "Settings",
    "check_models",
    "check_repair_images",
    "checked_eval_images",
    "load_settings",
    "reject_unknown_keys",
]


@dataclass(frozen=True)
class Settings:
    """The validated config (docs/configuration.md documents each key)."""

    models: dict[str, ModelSpec]
    images: ImageSpec = ImageSpec()
    """The §3 batch."""
    eval_images: ImageSpec = ImageSpec(count=256, seed=1)
    """The §4 evaluation images (odds, Table 3, sample influence)."""
    theta: float = DEFAULT_THETA
    device: str = "auto"
    gpus: int = 0
    """GPUs each forward-pass job asks a cluster scheduler for."""
    micro_batch: int = DEFAULT_MICRO_BATCH
    rand_seed: int = 0
    """Seed of RAND-reflect's random control channels."""
    odds_threshold: float = DEFAULT_ODDS_THRESHOLD
    figures: FigureSettings = field(default_factory=FigureSettings)
    controls: ControlSettings = ControlSettings()
    stability: StabilitySettings = StabilitySettings()
    reach: ReachSettings = ReachSettings()
    outputs: OutputSettings = OutputSettings()
    origin: OriginSettings = OriginSettings()
    injection: InjectionSettings = InjectionSettings()
    share: ShareSettings = ShareSettings()
    bootstrap: BootstrapSettings = BootstrapSettings()
    noise: NoiseSettings = NoiseSettings()
    repair: RepairSettings = RepairSettings()
    compare: CompareSettings = CompareSettings()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Typed settings from a schema-valid config with known keys (see :func:`load_settings`)."""
        entry = dict(config)
        entry["models"] = {name: ModelSpec.from_config(name, spec) for name, spec in config["models"].items()}
        for key in ("images", "eval_images"):
            if key in entry:
                entry[key] = ImageSpec(**entry[key])
        if "figures" in entry:
            entry["figures"] = FigureSettings.from_config(entry["figures"])
        if "controls" in entry:
            entry["controls"] = ControlSettings.from_config(entry["controls"])
        if "stability" in entry:
            entry["stability"] = StabilitySettings(**entry["stability"])
        if "reach" in entry:
            entry["reach"] = ReachSettings(**entry["reach"])
        if "outputs" in entry:
            entry["outputs"] = OutputSettings(**entry["outputs"])
        if "origin" in entry:
            entry["origin"] = OriginSettings(**entry["origin"])
        if "injection" in entry:
            entry["injection"] = InjectionSettings.from_config(entry["injection"])
        if "share" in entry:
            entry["share"] = ShareSettings(**entry["share"])
        if "bootstrap" in entry:
            entry["bootstrap"] = BootstrapSettings(**entry["bootstrap"])
        if "noise" in entry:
            entry["noise"] = NoiseSettings.from_config(entry["noise"])
        if "repair" in entry:
            entry["repair"] = RepairSettings.from_config(entry["repair"])
        if "compare" in entry:
            entry["compare"] = CompareSettings.from_config(entry["compare"])
        settings = cls(**entry)
        check_theta(settings.theta)
        settings = _with_repaired_models(settings)
        unknown = sorted({n.model for n in settings.figures.neurons} - set(settings.models))
        if unknown:
            raise ValueError(
                f"figures.neurons: models {unknown} are not under models: ({list(settings.models)})"
            )
        return settings


def _with_repaired_models(settings: Settings) -> Settings:
    """``settings`` whose ``models`` also hold every repair's plain swaps and students, under their
    derived names (:mod:`pan.repair.names`): they re-enter every rule as models."""
    repair = settings.repair
    unknown = sorted(set(repair.models) - set(settings.models))
    if unknown:
        raise ValueError(f"repair.models: {unknown} are not under models: ({list(settings.models)})")
    derived = derived_specs({name: settings.models[name] for name in repair.models}, repair.strategies)
    clash = sorted(set(derived) & set(settings.models))
    if clash:
        raise ValueError(f"models: {clash} are names of repaired models; rename them")
    models = {**settings.models, **derived}
    for pair in settings.compare.pairs:
        missing = [name for name in pair if name not in models]
        if missing:
            raise ValueError(f"compare.pairs: {missing} are neither under models: nor repaired models")
    return replace(settings, models=models)


RENAMED_KEYS = {
    "images.batch_size": "images.count",
    "eval_images.batch_size": "eval_images.count",
}
"""Keys of earlier versions, and what replaced them."""

_SECTIONS: dict[str, type] = {
    "": Settings,
    "models.*": ModelSpec,
    "images": ImageSpec,
    "eval_images": ImageSpec,
    "figures": FigureSettings,
    "figures.neurons.*": ConfiguredNeuron,
    "controls": ControlSettings,
    "stability": StabilitySettings,
    "reach": ReachSettings,
    "outputs": OutputSettings,
    "origin": OriginSettings,
    "injection": InjectionSettings,
    "share": ShareSettings,
    "bootstrap": BootstrapSettings,
    "noise": NoiseSettings,
    "repair": RepairSettings,
    "repair.images": ImageSpec,
    "compare": CompareSettings,
}
"""Where in the config each dataclass's fields are the known keys."""


def _known_keys(section: type) -> list[str]:
    return [f.name for f in fields(section) if f.name != "name" or section is not ModelSpec]


def reject_unknown_keys(config: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` for a key no setting reads, naming it and the closest known one."""

    def check(entry: Any, where: str, section: str) -> None:
        if not isinstance(entry, Mapping):
            return
        known = _known_keys(_SECTIONS[section])
        for key in entry:
            path = f"{where}.{key}" if where else str(key)
            renamed = RENAMED_KEYS.get(f"{section}.{key}" if section else str(key))
            if renamed:
                raise ConfigError(
                    f"invalid config: {path} was renamed {renamed} (how many images are drawn; "
                    f"micro_batch is the number of images per forward pass)"
                )
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys here: {', '.join(known)}"
                raise ConfigError(f"invalid config: unknown key {path!r}{hint}")

    check(config, "", "")
    for name, spec in (config.get("models") or {}).items():
        check(spec, f"models.{name}", "models.*")
    for key in (
        "images",
        "eval_images",
        "figures",
        "controls",
        "stability",
        "reach",
        "outputs",
        "injection",
        "share",
        "bootstrap",
        "noise",
        "origin",
    ):
        check(config.get(key), key, key)
    for key in ("repair", "compare"):
        check(config.get(key), key, key)
    repair = config.get("repair")
    if isinstance(repair, Mapping):
        check(repair.get("images"), "repair.images", "repair.images")
    figures = config.get("figures")
    for i, neuron in enumerate(figures.get("neurons") or [] if isinstance(figures, Mapping) else []):
        check(neuron, f"figures.neurons[{i}]", "figures.neurons.*")


def load_settings(config: Mapping[str, Any]) -> Settings:
    """:class:`Settings` from a config with known keys that passed the JSON schema, after the
    semantic checks; raises :class:`ConfigError` that says what to fix."""
    reject_unknown_keys(config)
    try:
        settings = Settings.from_config(config)
        # missing or empty folders, and too few images, fail here, before any job
        check_batch(image_records(settings.images), settings.images.count, "images")
        if settings.repair.models:
            check_repair_images(settings)
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(f"invalid config: {error}") from error
    return settings


def check_models(settings: Settings) -> None:
    """Every model's builder and weights names, before any job: :func:`pan.models.check_builders`
    (imports torchvision or timm when a model needs it, so the workflow's main process calls it
    once, jobs do not), raising :class:`ConfigError` that says what to fix."""
    from pan.capture.spec_checks import check_builders

    try:
        check_builders(settings.models)
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(f"invalid config: {error}") from error


def check_repair_images(settings: Settings) -> None:
    """Training images exist, leave a batch after the held-out ones, and share no image with the
    §3 batch, its stability draws or the §4 images (:class:`ImageOverlapError` otherwise)."""
    from pan.trust.runs import draw_images

    repair = settings.repair
    records = check_batch(image_records(repair.images), repair.images.count, "repair.images", minimum=1)
    if len(records) - repair.held_out < repair.batch:
        raise ValueError(
            f"repair.images: {len(records)} images leave {len(records) - repair.held_out} to train on "
            f"after held_out {repair.held_out}, fewer than one batch ({repair.batch})"
        )
    draws = [draw_images(settings.images, k) for k in range(settings.stability.draws)]
    check_no_overlap(
        repair.images,
        {"images": settings.images, "stability draws": draws, "eval_images": settings.eval_images},
    )


@lru_cache
def checked_eval_images(spec: ImageSpec) -> ImageSpec:
    """Section 4's images exist and their labels fit the models, or a :class:`ConfigError`.

    Checked when a section 4 output is requested (at DAG time, before any job), so a config
    whose evaluation set is not on disk still serves Tables 1 and 2.
    """
    try:
        records = check_batch(image_records(spec), spec.count, "eval_images", minimum=1)
        check_eval_labels(spec, records)
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(f"invalid config: eval_images: {error}") from error
    return spec
