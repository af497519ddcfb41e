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

from pan.beyond.attack import DEFAULT_INJECTION_COUNT, DEFAULT_KINDS, DEFAULT_POSITIONS, KINDS
from pan.beyond.attack_summary import DEFAULT_INJECTION_BOOTSTRAP
from pan.beyond.reach import DEFAULT_MAX_DISTANCE
from pan.bias.noise import DEFAULT_BOOTSTRAP, DEFAULT_MIN_MASS, DEFAULT_SPLITS
from pan.bias.noise_family import DEFAULT_CHANNEL_SCALES, DEFAULT_RAND_SEEDS, DEFAULT_WEIGHT_NOISE
from pan.bias.odds import DEFAULT_ODDS_THRESHOLD
from pan.bias.outputs import DEFAULT_FRAME
from pan.capture.classes import check_eval_labels
from pan.capture.images import ImageSpec, check_batch, image_records
from pan.capture.inference import DEFAULT_MICRO_BATCH
from pan.capture.models import ModelSpec
from pan.core.bootstrap import DEFAULT_BOOTSTRAP_SEED, DEFAULT_REPLICATES
from pan.core.ks import DEFAULT_SHARE
from pan.core.labelling import DEFAULT_THETA, check_theta
from pan.repair.names import derived_specs
from pan.repair.settings import CompareSettings, RepairSettings, check_no_overlap
from pan.trust.controls import CONDITIONS, DEFAULT_CONTROLS_SEED
from pan.trust.stability import DEFAULT_DRAWS

__all__ = [
    "ConfigError",
    "ConfiguredNeuron",
    "BootstrapSettings",
    "ControlSettings",
    "FigureSettings",
    "InjectionSettings",
    "RENAMED_KEYS",
    "OutputSettings",
    "ReachSettings",
    "ShareSettings",
    "Settings",
    "StabilitySettings",
    "check_models",
    "check_repair_images",
    "checked_eval_images",
    "load_settings",
    "reject_unknown_keys",
]


class ConfigError(ValueError):
    """The config is inconsistent; the message says which key to fix."""


@dataclass(frozen=True)
class ConfiguredNeuron:
    """A neuron named in the config under ``figures: neurons:``, drawn whatever theta."""

    model: str
    layer: str
    neuron: int

    @property
    def slot(self) -> str:
        return f"{self.layer}_n{self.neuron}"


@dataclass(frozen=True)
class FigureSettings:
    """The ``figures:`` section: which neurons get per-neuron figures."""

    neurons: tuple[ConfiguredNeuron, ...] = ()
    top_pans: int = 3
    """Strongest PANs per model that get figures."""
    top_edge_detectors: int = 2
    """Strongest non-PAN edge detectors per model that get figures."""
    heatmap_images: tuple[int, int] = (0, 1)
    """Positions in the §3 batch of the two images whose maps PAN cards show."""

    @classmethod
    def from_config(cls, entry: Mapping[str, Any]) -> FigureSettings:
        entry = dict(entry)
        if "neurons" in entry:
            entry["neurons"] = tuple(ConfiguredNeuron(**n) for n in entry["neurons"])
        if "heatmap_images" in entry:
            entry["heatmap_images"] = tuple(entry["heatmap_images"])
        return cls(**entry)

    def ranked_slots(self) -> list[str]:
        """``pan1..panK`` then ``edge1..edgeM``: the same for every model."""
        return [f"pan{i}" for i in range(1, self.top_pans + 1)] + [
            f"edge{i}" for i in range(1, self.top_edge_detectors + 1)
        ]

    def slots(self, model: str) -> list[str]:
        """Every neuron slot of ``model``: ranked ones, then those named in the config."""
        configured = [n.slot for n in self.neurons if n.model == model]
        return self.ranked_slots() + list(dict.fromkeys(configured))


@dataclass(frozen=True)
class ControlSettings:
    """The ``controls:`` section: which conditions ``results/tables/controls.csv`` compares."""

    conditions: tuple[str, ...] = CONDITIONS
    seed: int = DEFAULT_CONTROLS_SEED
    """Seed of the ``random_init`` condition's initialisation."""

    @classmethod
    def from_config(cls, entry: Mapping[str, Any]) -> ControlSettings:
        entry = dict(entry)
        if "conditions" in entry:
            unknown = sorted(set(entry["conditions"]) - set(CONDITIONS))
            if unknown:
                raise ValueError(f"controls.conditions: unknown {unknown}; use some of {list(CONDITIONS)}")
            # table order, whatever the config's order
            entry["conditions"] = tuple(c for c in CONDITIONS if c in entry["conditions"])
        return cls(**entry)


@dataclass(frozen=True)
class StabilitySettings:
    """The ``stability:`` section: how many seeded draws of the §3 batch are labelled."""

    draws: int = DEFAULT_DRAWS

    def __post_init__(self) -> None:
        if isinstance(self.draws, bool) or int(self.draws) != self.draws or self.draws < 2:
            raise ValueError(f"stability.draws must be an integer of at least 2, got {self.draws!r}")
        object.__setattr__(self, "draws", int(self.draws))


@dataclass(frozen=True)
class ReachSettings:
    """The ``reach:`` section: how far from each border padding awareness is scored."""

    max_distance: int = DEFAULT_MAX_DISTANCE
    """Rows/columns 0..max_distance from each border; the inner centre lies beyond them."""


@dataclass(frozen=True)
class OutputSettings:
    """The ``outputs:`` section: §4's tables for any output (:mod:`pan.bias.outputs`)."""

    frame: int = DEFAULT_FRAME
    """Width in pixels of a spatial output's border frame, compared with its interior."""


@dataclass(frozen=True)
class ShareSettings:
    """The ``share:`` section: the share rule beside the paper's (docs/trust.md)."""

    q: float = DEFAULT_SHARE
    """Share of the centre the share rule's KS+ and KS- compare a border with, at every map size."""


@dataclass(frozen=True)
class BootstrapSettings:
    """The ``bootstrap:`` section: the image bootstrap that gives every label an interval."""

    replicates: int = DEFAULT_REPLICATES
    """Image-bootstrap replicates of the main KS jobs (0: labels carry no interval)."""
    seed: int = DEFAULT_BOOTSTRAP_SEED
    """Seed of the bootstrap's image draws."""


@dataclass(frozen=True)
class InjectionSettings:
    """The ``injection:`` section: the one-pixel lines drawn into the §4 evaluation images."""

    positions: tuple[float, ...] = DEFAULT_POSITIONS
    """Where lines go, as fractions of the input's height (rows) and width (columns)."""
    kinds: tuple[str, ...] = DEFAULT_KINDS
    """``zero`` (0 in input space), ``black`` (pixel value 0), ``copied`` (the control)."""
    count: int | None = DEFAULT_INJECTION_COUNT
    """The first ``count`` evaluation images get lines (``None``: all of them)."""
    bootstrap: int = DEFAULT_INJECTION_BOOTSTRAP
    """Bootstrap resamples of the intervals of the rates and their differences."""

    @classmethod
    def from_config(cls, entry: Mapping[str, Any]) -> InjectionSettings:
        entry = {key: tuple(value) if isinstance(value, list) else value for key, value in entry.items()}
        settings = cls(**entry)
        unknown = sorted(set(settings.kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"injection.kinds: unknown kinds {unknown}; use some of {list(KINDS)}")
        for key in ("positions", "kinds"):
            values = getattr(settings, key)
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:  # a repeated position would count its lines twice in mean_l1 and the rates
                raise ValueError(f"injection.{key}: {repeated} listed more than once; list each once")
        return settings


@dataclass(frozen=True)
class NoiseSettings:
    """The ``noise:`` section: §4's noise model (:mod:`pan.bias.noise_family`, :mod:`pan.bias.noise`)."""

    rand_seeds: int = DEFAULT_RAND_SEEDS
    """RAND-reflect draws (seeds ``rand_seed`` onwards), ``rand_reflect`` included."""
    channel_scales: tuple[float, ...] = DEFAULT_CHANNEL_SCALES
    """Random channel sets of these multiples of each layer's PAN count."""
    weight_noise: tuple[float, ...] = DEFAULT_WEIGHT_NOISE
    """Relative Gaussian weight noise levels."""
    min_mass: float = DEFAULT_MIN_MASS
    """A class counts only when the original's summed softmax over the images reaches this."""
    bootstrap: int = DEFAULT_BOOTSTRAP
    """Image-bootstrap resamples of the per-class odds intervals."""
    splits: int = DEFAULT_SPLITS
    """Random splits into two halves for the sampling-noise floor."""

    @classmethod
    def from_config(cls, entry: Mapping[str, Any]) -> NoiseSettings:
        entry = {key: tuple(value) if isinstance(value, list) else value for key, value in entry.items()}
        return cls(**entry)


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
