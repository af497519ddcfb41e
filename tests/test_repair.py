"""pan.repair: students by strategy, distillation, the repair rules, the table and compare.

Planted nets (tests/repair_net.py): PANs whose zero border moves the logits (``RepairNet``) and
PANs that die at a ReLU (``DeadPanNet``); the tiny net of tests/tiny_net.py for the student's
padding against pan's own reflect variants.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml
from conftest import tiny_config, write_images

from pan.bias.reflect import with_reflect_padding
from pan.bias.variants import pan_channels
from pan.capture.images import ImageSpec, image_records
from pan.repair.compare import LayerMismatchError, compare_labels
from pan.repair.distill import distill, fidelity
from pan.repair.settings import DistillSettings
from pan.repair.student import StudentConv2d, build_student
from pan.workflow.config import ConfigError, load_settings
from pan.workflow.run import run_workflow, scheduled_jobs

TESTS = Path(__file__).resolve().parent
STRATEGIES = ("reflect", "pan_reflect", "zero_line")


def _labels(layer: str, pans: list[bool]) -> pl.DataFrame:
    n = len(pans)
    return pl.DataFrame(
        {"layer": [layer] * n, "layer_index": [0] * n, "neuron": list(range(n)), "is_pan": pans}
    )


def _batch(count: int = 8, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 3, 32, 32, generator=generator) * 0.2 + 0.8


def test_students_pad_as_pans_own_reflect_variants_and_leave_the_teacher_alone():
    from tiny_net import build

    teacher = build().eval()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    x = _batch()
    labels = _labels("conv1", [n < 8 for n in range(12)])
    reflect = build_student(teacher, "reflect").eval()
    partial = build_student(teacher, "pan_reflect", labels).eval()
    assert isinstance(reflect.conv1, StudentConv2d) and reflect.conv1.padding_mode == "reflect"
    assert partial.conv1.padding_mode == "zeros" and isinstance(partial.valid, torch.nn.Conv2d)
    torch.testing.assert_close(reflect(x), with_reflect_padding(teacher)(x), rtol=0, atol=0)
    torch.testing.assert_close(
        partial(x), with_reflect_padding(teacher, pan_channels(labels))(x), rtol=0, atol=0
    )
    torch.testing.assert_close(build_student(teacher, "zero_line")(x), teacher(x), rtol=0, atol=0)
    # the §4 variants of a student: reflect of the partial student is the full reflect model
    torch.testing.assert_close(with_reflect_padding(partial)(x), reflect(x), rtol=0, atol=0)
    torch.testing.assert_close(with_reflect_padding(reflect)(x), reflect(x), rtol=0, atol=0)
    # same parameter names as the teacher, plus the reflect masks
    assert {k for k in reflect.state_dict() if not k.endswith(".reflect_mask")} == set(before)
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key])
        assert reflect.state_dict()[key].data_ptr() != value.data_ptr()


def _records(tmp_path: Path, count: int, seed: int) -> list:
    write_images(tmp_path / f"train{seed}", count, seed=seed)
    return image_records(ImageSpec("folder", str(tmp_path / f"train{seed}"), count, 0))


def _transform():
    from pan.capture.models import eval_transform

    return eval_transform(32, 32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def test_a_student_whose_swap_changes_nothing_stays_equal_to_its_teacher(tmp_path):
    from repair_net import EXPECTED_TYPES, build_dead

    import pan

    teacher = build_dead().eval()
    photos = [r.load() for r in _records(tmp_path, 16, 3)]
    found = pan.find_pans(teacher, photos, theta=0.5, transform=_transform())
    pans = {(r["layer"], r["neuron"]): r["pan_type"] for r in found.filter("is_pan").iter_rows(named=True)}
    assert pans == {key: kind for key, kind in EXPECTED_TYPES.items() if kind}  # the PANs are there
    student = build_student(teacher, "reflect")
    settings = DistillSettings(held_out=8, steps=6, batch=8, lr=0.1, eval_every=3)
    records = _records(tmp_path, 40, 4)
    curve, _ = distill(teacher, student, _transform(), records, settings, strategy="reflect")
    for key, value in teacher.state_dict().items():
        assert torch.equal(student.state_dict()[key], value), key
    assert curve["loss"].drop_nulls().max() == 0.0
    assert curve["held_out_agreement"].drop_nulls().to_list() == [1.0] * 3


def test_distillation_resumes_from_its_checkpoint_as_if_never_killed(tmp_path):
    from repair_net import build

    from pan.capture.images import ImageRecord

    teacher = build().eval()
    records = _records(tmp_path, 48, 5)
    settings = DistillSettings(held_out=8, steps=8, batch=8, lr=0.02, eval_every=4)
    whole = build_student(teacher, "zero_line")
    curve, _ = distill(teacher, whole, _transform(), records, settings, strategy="zero_line")
    loads = [0]

    def killed_at_step_6(record):  # 8 held-out loads, then 8 per step: dies inside step 6
        def load():
            loads[0] += 1
            if loads[0] > 8 + 5 * 8 + 3:
                raise KeyboardInterrupt
            return record.load()

        return ImageRecord(record.id, record.label, load)

    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        distill(
            teacher,
            build_student(teacher, "zero_line"),
            _transform(),
            [killed_at_step_6(r) for r in records],
            settings,
            strategy="zero_line",
            checkpoint=checkpoint,
        )
    assert checkpoint.exists()  # written after step 4
    resumed = build_student(teacher, "zero_line")
    again, _ = distill(
        teacher, resumed, _transform(), records, settings, strategy="zero_line", checkpoint=checkpoint
    )
    for key, value in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)
    assert again["loss"].to_list() == curve["loss"].to_list()
    other = DistillSettings(**{**vars(settings), "lr": 0.01})  # other settings: the checkpoint is not trusted
    fresh, _ = distill(
        teacher,
        build_student(teacher, "zero_line"),
        _transform(),
        records,
        other,
        strategy="zero_line",
        checkpoint=checkpoint,
    )
    assert fresh["step"].to_list() == list(range(9)) and fresh["loss"].to_list() != curve["loss"].to_list()


def test_the_loss_is_the_kl_divergence_with_its_analytic_gradient():
    from pan.repair.distill import distillation_loss

    teacher, student = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    for temperature in (1.0, 2.5):
        mine = student.clone().requires_grad_(True)
        loss = distillation_loss(teacher, mine, temperature)
        loss.backward()
        reference = student.clone().requires_grad_(True)
        expected = (
            torch.nn.functional.kl_div(
                torch.log_softmax(reference / temperature, 1),
                torch.log_softmax(teacher / temperature, 1),
                log_target=True,
                reduction="batchmean",
            )
            * temperature**2
        )
        expected.backward()
        torch.testing.assert_close(loss, expected)
        torch.testing.assert_close(mine.grad, reference.grad)
    same = teacher.float().clone().requires_grad_(True)
    distillation_loss(teacher.float(), same, 1.0).backward()
    assert not same.grad.any()


def test_fidelity_is_kl_and_agreement():
    teacher = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    assert fidelity(teacher, teacher) == {"kl": 0.0, "agreement": 1.0}
    student = torch.tensor([[0.0, 2.0], [0.0, 1.0]])
    p = torch.softmax(teacher[0], 0)
    expected = float((p * (p.log() - torch.log_softmax(student[0], 0))).sum()) / 2
    measured = fidelity(teacher, student)
    assert measured["agreement"] == 0.5 and measured["kl"] == pytest.approx(expected)


def test_compare_a_model_with_itself_gives_jaccard_one_and_mismatches_are_refused():
    a = pl.concat(
        [
            _labels("conv1", [True, False, True]),
            _labels("conv2", [False, False]).with_columns(layer_index=pl.lit(1, dtype=pl.Int64)),
        ]
    )
    same = compare_labels(a, a)
    assert same["jaccard"].to_list() == [1.0, 1.0, 1.0]
    assert same.filter(pl.col("layer") == "all").row(0, named=True) | {} == {
        "layer_index": -1,
        "layer": "all",
        "neurons": 5,
        "pans_a": 2,
        "pans_b": 2,
        "kept": 2,
        "lost": 0,
        "new": 0,
        "jaccard": 1.0,
    }
    b = a.with_columns(is_pan=pl.Series([True, True, False, False, True]))
    moved = compare_labels(a, b).row(0, named=True)
    assert (moved["kept"], moved["lost"], moved["new"], moved["jaccard"]) == (
        1,
        1,
        1,
        pytest.approx(1 / 3, abs=1e-4),
    )
    with pytest.raises(LayerMismatchError, match="layer 'conv1': 3 vs 2 channels"):
        compare_labels(a, a.filter(pl.col("neuron") != 2))
    with pytest.raises(LayerMismatchError, match="analysed layer 1: 'conv2' vs 'other'"):
        compare_labels(
            a,
            a.with_columns(
                layer=pl.when(pl.col("layer_index") == 1).then(pl.lit("other")).otherwise("layer")
            ),
        )


def _repair_config(**repair) -> dict:
    return tiny_config(
        models={
            "net": {
                "source": "python",
                "builder": "repair_net.py:build",
                "input_size": 32,
                "resize_size": 32,
                "mean": [0.0, 0.0, 0.0],
                "std": [1.0, 1.0, 1.0],
                "categories": ["a", "b"],
            }
        },
        eval_images={"source": "folder", "path": "eval", "count": 24, "seed": 0},
        injection={"count": 4, "positions": [0.5]},
        repair={
            "models": ["net"],
            "images": {"source": "folder", "path": "train", "count": 96},
            "held_out": 16,
            "steps": 40,
            "batch": 16,
            "lr": 0.001,
            "eval_every": 10,
            **repair,
        },
        compare={"pairs": [["net", "net"]]},
    )


@pytest.fixture(scope="module")
def repair_run(tmp_path_factory) -> Path:
    """One repair of the planted net by every strategy through the workflow."""
    workdir = tmp_path_factory.mktemp("repair_run")
    shutil.copy(TESTS / "repair_net.py", workdir / "repair_net.py")
    write_images(workdir / "images", 20, seed=0)
    write_images(workdir / "eval", 24, seed=1)
    write_images(workdir / "train", 96, seed=2)
    (workdir / "config.yaml").write_text(yaml.safe_dump(_repair_config()))
    run_workflow(workdir, "repair")
    return workdir


def test_the_reflect_student_has_no_pans_and_distillation_beats_the_plain_swap(repair_run):
    table = pl.read_csv(repair_run / "results/tables/repair.csv")
    rows = {(r["strategy"], r["stage"]): r for r in table.iter_rows(named=True)}
    assert set(rows) == {(s, stage) for s in STRATEGIES for stage in ("before", "after")}
    teacher_pans = pl.read_parquet(repair_run / "results/pans/net.parquet")["is_pan"].sum()
    assert teacher_pans == 4 and rows["zero_line", "before"]["pans"] == 4
    assert rows["reflect", "before"]["measured_model"] == "net.swapped-reflect"
    assert rows["reflect", "after"]["pans"] == rows["reflect", "before"]["pans"] == 0
    # pan_reflect: none of the teacher's PANs is left (the blind channels that keep zero padding
    # may learn to read it: compare_net_net.repaired-pan_reflect.csv counts them as new)
    inherited = pl.read_csv(repair_run / "results/tables/compare_net_net.repaired-pan_reflect.csv")
    assert inherited.filter(pl.col("layer") == "all").select("kept", "lost").row(0) == (0, 4)
    assert rows["reflect", "before"]["mean_kl"] > 0.01
    for strategy in ("reflect", "pan_reflect"):
        assert rows[strategy, "after"]["mean_kl"] < rows[strategy, "before"]["mean_kl"] / 2
        assert rows[strategy, "after"]["agreement"] >= rows[strategy, "before"]["agreement"]
    assert rows["zero_line", "before"]["mean_kl"] == 0.0 and rows["zero_line", "before"]["agreement"] == 1.0
    assert rows["reflect", "after"]["steps"] == 40 and rows["reflect", "after"]["images"] == 80
    curve = pl.read_parquet(repair_run / "results/repair/net/reflect/curve.parquet")
    assert curve["step"].to_list() == list(range(41))
    assert curve["held_out_kl"].drop_nulls().len() == 5
    assert (repair_run / "results/figures/net/repair.png").stat().st_size > 0
    log = (repair_run / "results/logs/repair/net/reflect.log").read_text()
    assert "img/s" in log and "loss=" in log


def test_a_repaired_model_is_a_model_and_is_exported_with_its_provenance(repair_run):
    from pan.bias.export import read_provenance

    compare = pl.read_csv(repair_run / "results/tables/compare_net_net.csv")
    assert compare["jaccard"].to_list() == [1.0, 1.0]
    inherited = pl.read_csv(repair_run / "results/tables/compare_net_net.repaired-zero_line.csv")
    assert inherited.filter(pl.col("layer") == "all")["pans_a"].item() == 4
    lost = pl.read_csv(repair_run / "results/tables/compare_net_net.repaired-reflect.csv")
    assert lost.filter(pl.col("layer") == "all").select("kept", "lost", "new").row(0) == (0, 4, 0)
    provenance = read_provenance(repair_run / "results/repair/net/reflect/student.pt2")
    assert provenance["variant"] == "repaired" and provenance["check_max_abs_diff"] == 0.0
    assert provenance["repair"]["teacher"] == "net" and provenance["repair"]["strategy"] == "reflect"
    assert len(provenance["repair"]["loss_curve"]) == 40
    program = torch.export.load(repair_run / "results/repair/net/reflect/student.pt2").module()
    state = torch.load(repair_run / "results/repair/net/reflect/student.pt", weights_only=True)
    assert state["conv1.reflect_mask"].all()
    assert program(_batch(2)).shape == (2, 2)
    # the §4 outputs and the zero-line attack of a repaired model came from the ordinary rules
    assert (repair_run / "results/eval/net.repaired-reflect/pan_reflect.parquet").is_file()
    assert (repair_run / "results/injection/net.repaired-zero_line/firing.parquet").is_file()


def test_a_theta_change_reruns_only_what_depends_on_the_labels(repair_run):
    result = run_workflow(repair_run, "repair", "-n", "--config", "theta=0.45")
    jobs = scheduled_jobs(result.stdout)
    assert jobs.get("repair_swap") == 1 and jobs.get("repair_train") == 1  # pan_reflect only
    # the two models of pan_reflect are new models: their dumps and KS; nobody else's
    assert jobs.get("activations") == 2 and jobs.get("ks_scores") == 2
    assert "output: results/repair/net/pan_reflect/student.pt" in result.stdout
    assert "output: results/repair/net/reflect/student.pt" not in result.stdout
    assert "output: results/repair/net/zero_line/student.pt" not in result.stdout


@pytest.mark.parametrize("seed", [1, 2])
def test_training_images_overlapping_section_3_or_4_are_refused_before_any_job(
    tiny_workdir, monkeypatch, seed
):
    monkeypatch.chdir(tiny_workdir)
    shutil.copy(TESTS / "repair_net.py", tiny_workdir / "repair_net.py")
    config = tiny_config(
        eval_images={"source": "builtin", "count": 16, "seed": 1},
        repair={
            "models": ["tiny"],
            "images": {"source": "builtin", "count": 64, "seed": seed},
            "held_out": 8,
        },
    )
    if seed == 2:  # a folder shared with the section 3 batch
        config["repair"]["images"] = {"source": "folder", "path": "images", "count": 20}
        config["repair"]["batch"] = 8
    with pytest.raises(ConfigError, match="repair.images overlaps (eval_images|images)"):
        load_settings(config)
    (tiny_workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_workflow(tiny_workdir, "repair", "-n", check=False)
    assert result.returncode != 0 and "repair.images overlaps" in result.stderr + result.stdout
    config["repair"]["images"] = {"source": "builtin", "count": 64, "seed": 7}
    assert "tiny.repaired-reflect" in load_settings(config).models


def test_repair_settings_are_checked_with_the_fix(tiny_workdir, monkeypatch):
    monkeypatch.chdir(tiny_workdir)
    with pytest.raises(ConfigError, match=r"repair.models: \['other'\] are not under models"):
        load_settings(tiny_config(repair={"models": ["other"]}))
    with pytest.raises(ConfigError, match="unknown key 'repair.step'; did you mean 'steps'"):
        load_settings(tiny_config(repair={"step": 3}))
    with pytest.raises(ConfigError, match="unknown key 'repair.images.sede'"):
        load_settings(tiny_config(repair={"images": {"sede": 3}}))
    with pytest.raises(ConfigError, match=r"compare.pairs: \['nope'\]"):
        load_settings(tiny_config(compare={"pairs": [["tiny", "nope"]]}))
    long = {"m" * 60: tiny_config()["models"]["tiny"]}
    with pytest.raises(ConfigError, match="shorten the teacher's name"):
        load_settings(tiny_config(models=long, repair={"models": ["m" * 60]}))


def test_curves_are_seeded(tmp_path):
    from repair_net import build

    teacher = build().eval()
    records = _records(tmp_path, 40, 6)
    settings = DistillSettings(held_out=8, steps=3, batch=8, lr=0.02, eval_every=3)
    runs = [
        distill(
            teacher, build_student(teacher, "reflect"), _transform(), records, settings, strategy="reflect"
        )[0]
        for _ in range(2)
    ]
    assert runs[0]["loss"].to_list() == runs[1]["loss"].to_list()
    assert np.isfinite(runs[0]["loss"].drop_nulls().to_numpy()).all()


def test_the_schema_and_docs_state_the_repair_settings_and_their_defaults_once():
    from dataclasses import fields

    from pan.repair.names import STRATEGIES as NAMES
    from pan.repair.settings import PARAMETER_SETS, CompareSettings, RepairSettings

    schema = yaml.safe_load((TESTS.parent / "workflow/schemas/config.schema.yaml").read_text())
    repair = schema["properties"]["repair"]["properties"]
    assert set(repair) == {f.name for f in fields(RepairSettings)}
    assert tuple(repair["strategies"]["items"]["enum"]) == NAMES
    assert tuple(repair["train"]["enum"]) == PARAMETER_SETS
    assert set(schema["properties"]["compare"]["properties"]) == {f.name for f in fields(CompareSettings)}
    docs = (TESTS.parent / "docs/repair.md").read_text()
    defaults = RepairSettings()
    for f in fields(RepairSettings):
        value = getattr(defaults, f.name)
        if f.name == "images":
            for key in ("source", "count", "seed"):
                assert f"| `repair.images.{key}` | {getattr(value, key)} |" in docs, key
            continue
        assert f"| `repair.{f.name}` | {_shown(value)} |" in docs, f.name
    assert "| `compare.pairs` | none |" in docs


def _shown(value) -> str:
    """A default as the docs' table writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return f"[{', '.join(value)}]" if value else "none"
    return str(value)
