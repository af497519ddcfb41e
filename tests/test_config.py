"""The one config route (pan.workflow.config): known keys, schema, typed settings, defaults stated once."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from conftest import tiny_config

from pan.bias.odds import DEFAULT_ODDS_THRESHOLD
from pan.capture import images, models
from pan.capture.images import ImageSpec
from pan.capture.inference import DEFAULT_MICRO_BATCH
from pan.core.labelling import DEFAULT_THETA
from pan.trust.controls import CONDITIONS
from pan.workflow.config import Settings, load_settings, reject_unknown_keys
from pan.workflow.sections import (
    BootstrapSettings,
    ConfigError,
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

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"thetaa": 0.3}, "unknown key 'thetaa'; did you mean 'theta'?"),
        ({"micro_bacth": 8}, "unknown key 'micro_bacth'; did you mean 'micro_batch'?"),
        ({"eval_image": {"source": "builtin"}}, "unknown key 'eval_image'; did you mean 'eval_images'?"),
        ({"images": {"source": "builtin", "sede": 1}}, "unknown key 'images.sede'; did you mean 'seed'?"),
        (
            {"models": {"m": {"source": "efficientnet_lite", "varient": "lite0"}}},
            "unknown key 'models.m.varient'; did you mean 'variant'?",
        ),
        ({"figures": {"top_pan": 1}}, "unknown key 'figures.top_pan'; did you mean 'top_pans'?"),
        ({"reach": {"max_distanse": 2}}, "unknown key 'reach.max_distanse'; did you mean 'max_distance'?"),
        ({"injection": {"kind": ["zero"]}}, "unknown key 'injection.kind'; did you mean 'kinds'?"),
        (
            {"figures": {"neurons": [{"model": "tiny", "layer": "conv1", "neron": 1}]}},
            "unknown key 'figures.neurons[0].neron'; did you mean 'neuron'?",
        ),
        ({"images": {"source": "builtin", "batch_size": 8}}, "images.batch_size was renamed images.count"),
        ({"eval_images": {"source": "builtin", "batch_size": 8}}, "eval_images.batch_size was renamed"),
    ],
)
def test_unknown_and_renamed_keys_are_refused_naming_the_fix(changes, message):
    with pytest.raises(ConfigError) as error:
        reject_unknown_keys(tiny_config(**changes))
    assert message in str(error.value)


def test_settings_fill_every_default_from_one_place():
    settings = Settings.from_config({"models": {"m": {"source": "efficientnet_lite", "variant": "lite0"}}})
    assert (settings.theta, settings.micro_batch, settings.odds_threshold) == (
        DEFAULT_THETA,
        DEFAULT_MICRO_BATCH,
        DEFAULT_ODDS_THRESHOLD,
    )
    assert settings.images == ImageSpec("builtin", None, 64, 0)
    assert settings.eval_images == ImageSpec("builtin", None, 256, 1)
    assert settings.figures == FigureSettings()


def walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def test_the_schema_states_no_defaults_and_the_same_keys_and_sources_as_the_settings():
    assert not [node for node in walk(SCHEMA) if "default" in node]
    assert set(SCHEMA["properties"]) == {f.name for f in fields(Settings)}
    model = SCHEMA["properties"]["models"]["additionalProperties"]
    assert set(model["properties"]) == {f.name for f in fields(models.ModelSpec)} - {"name"}
    assert tuple(model["properties"]["source"]["enum"]) == models.SOURCES
    image_set = SCHEMA["$defs"]["image_set"]
    assert set(image_set["properties"]) == {f.name for f in fields(ImageSpec)}
    assert tuple(image_set["properties"]["source"]["enum"]) == images.SOURCES
    assert set(SCHEMA["properties"]["figures"]["properties"]) == {f.name for f in fields(FigureSettings)}
    assert set(SCHEMA["properties"]["controls"]["properties"]) == {f.name for f in fields(ControlSettings)}
    assert set(SCHEMA["properties"]["stability"]["properties"]) == {f.name for f in fields(StabilitySettings)}
    conditions = SCHEMA["properties"]["controls"]["properties"]["conditions"]["items"]["enum"]
    assert tuple(conditions) == CONDITIONS
    assert set(SCHEMA["properties"]["reach"]["properties"]) == {f.name for f in fields(ReachSettings)}
    assert set(SCHEMA["properties"]["origin"]["properties"]) == {f.name for f in fields(OriginSettings)}
    assert set(SCHEMA["properties"]["injection"]["properties"]) == {f.name for f in fields(InjectionSettings)}
    assert set(SCHEMA["properties"]["outputs"]["properties"]) == {f.name for f in fields(OutputSettings)}
    assert set(SCHEMA["properties"]["share"]["properties"]) == {f.name for f in fields(ShareSettings)}
    assert set(SCHEMA["properties"]["bootstrap"]["properties"]) == {f.name for f in fields(BootstrapSettings)}
    assert set(SCHEMA["properties"]["noise"]["properties"]) == {f.name for f in fields(NoiseSettings)}


def test_the_configuration_page_states_the_defaults_of_the_settings():
    readme = (REPO / "docs/configuration.md").read_text()
    defaults = Settings.from_config({"models": {"m": {"source": "efficientnet_lite", "variant": "lite0"}}})
    for key, value in {
        "theta": defaults.theta,
        "micro_batch": defaults.micro_batch,
        "odds_threshold": defaults.odds_threshold,
        "rand_seed": defaults.rand_seed,
        "gpus": defaults.gpus,
        "images.count": defaults.images.count,
        "images.seed": defaults.images.seed,
        "controls.seed": defaults.controls.seed,
        "stability.draws": defaults.stability.draws,
        "reach.max_distance": defaults.reach.max_distance,
        "share.q": defaults.share.q,
        "bootstrap.replicates": defaults.bootstrap.replicates,
        "bootstrap.seed": defaults.bootstrap.seed,
        "origin.replicates": defaults.origin.replicates,
        "origin.seed": defaults.origin.seed,
        "injection.count": defaults.injection.count,
        "injection.bootstrap": defaults.injection.bootstrap,
        "noise.rand_seeds": defaults.noise.rand_seeds,
        "noise.min_mass": defaults.noise.min_mass,
        "noise.bootstrap": defaults.noise.bootstrap,
        "noise.splits": defaults.noise.splits,
    }.items():
        assert f"| `{key}` | {value} |" in readme, key


def test_figure_neurons_of_unknown_models_are_refused(tiny_workdir, monkeypatch):
    monkeypatch.chdir(tiny_workdir)
    config = tiny_config(figures={"neurons": [{"model": "other", "layer": "conv1", "neuron": 0}]})
    with pytest.raises(ConfigError, match=r"models \['other'\] are not under models"):
        load_settings(config)
    assert load_settings(tiny_config()).models["tiny"].input_size == 32


@pytest.mark.parametrize("name", [".", "..", "-m", "_m", "a/b", "m" * 65])
def test_model_names_that_would_make_bad_paths_fail_the_schema(name):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    config = {"models": {name: {"source": "efficientnet_lite", "variant": "lite0"}}}
    with pytest.raises(WorkflowError, match="does not match"):
        validate(config, str(REPO / "workflow/schemas/config.schema.yaml"))
    validate(
        {"models": {"lite0.v2-b_1": config["models"][name]}},
        str(REPO / "workflow/schemas/config.schema.yaml"),
    )


@pytest.mark.parametrize("key, values", [("positions", [0.25, 0.5, 0.25]), ("kinds", ["zero", "zero"])])
def test_duplicate_injection_entries_are_refused(key, values):
    with pytest.raises(ValueError, match=f"injection.{key}: .* listed more than once"):
        InjectionSettings.from_config({key: values})
