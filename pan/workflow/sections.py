"""The config's sections as typed, frozen settings (one dataclass per section of
``config.yaml``), each default stated once; :mod:`pan.workflow.config` assembles them into
:class:`~pan.workflow.config.Settings`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pan.beyond.attack import DEFAULT_INJECTION_COUNT, DEFAULT_KINDS, DEFAULT_POSITIONS, KINDS
from pan.beyond.attack_summary import DEFAULT_INJECTION_BOOTSTRAP
from pan.beyond.probe import DEFAULT_REPLICATES as ORIGIN_REPLICATES
from pan.beyond.probe import DEFAULT_SEED as ORIGIN_SEED
from pan.beyond.reach import DEFAULT_MAX_DISTANCE
from pan.bias.noise import DEFAULT_BOOTSTRAP, DEFAULT_MIN_MASS, DEFAULT_SPLITS
from pan.bias.noise_family import DEFAULT_CHANNEL_SCALES, DEFAULT_RAND_SEEDS, DEFAULT_WEIGHT_NOISE
from pan.bias.outputs import DEFAULT_FRAME
from pan.core.bootstrap import DEFAULT_BOOTSTRAP_SEED, DEFAULT_REPLICATES
from pan.core.ks import DEFAULT_SHARE
from pan.trust.controls import CONDITIONS, DEFAULT_CONTROLS_SEED
from pan.trust.stability import DEFAULT_DRAWS

__all__ = [
    "BootstrapSettings",
    "ConfigError",
    "ConfiguredNeuron",
    "ControlSettings",
    "FigureSettings",
    "InjectionSettings",
    "NoiseSettings",
    "OriginSettings",
    "OutputSettings",
    "ReachSettings",
    "ShareSettings",
    "StabilitySettings",
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
class OriginSettings:
    """The ``origin:`` section: the image bootstrap of the origin 2x2 and the flip control."""

    replicates: int = ORIGIN_REPLICATES
    """Bootstrap draws of the §3 batch behind every strength interval."""
    seed: int = ORIGIN_SEED
    """Seed of the draws (the same draws for every condition and layer: paired)."""


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
