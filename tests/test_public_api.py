"""The public API (``pan.__all__``): every name documented by a runnable example, here or in its
docstring; the package layout's own rules (module size, ``__all__`` in every module)."""

from __future__ import annotations

import ast
import doctest
import inspect
from pathlib import Path

import pytest
import torch
from torch import nn

import pan

PAN_DIR = Path(pan.__file__).parent
MAX_MODULE_LINES = 400


def _docstring_examples(obj) -> list[doctest.DocTest]:
    tests = doctest.DocTestFinder(recurse=False).find(obj, globs={})
    return [t for t in tests if t.examples]


@pytest.mark.parametrize("name", [n for n in pan.__all__ if inspect.isfunction(getattr(pan, n))])
def test_every_public_function_has_a_docstring_example_that_runs(name):
    tests = _docstring_examples(getattr(pan, name))
    if name == "analysed_layers":  # documented by the test below
        return
    assert tests, f"pan.{name} has no >>> example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"the example of pan.{name} fails"


def test_analysed_layers_lists_convs_larger_than_1x1_by_name():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 2, (1, 3)))
    layers = pan.analysed_layers(net)
    assert [(layer.index, layer.name) for layer in layers] == [(0, "0"), (1, "2")]
    assert layers[0].module is net[0]


def test_borders_and_pan_types_are_the_papers():
    assert pan.BORDERS == ("T", "B", "L", "R")
    assert len(pan.PAN_TYPES) == 15 and pan.PAN_TYPES[:4] == pan.BORDERS and pan.PAN_TYPES[-1] == "TBLR"
    assert pan.PAN_TYPES[4:10] == ("TB", "TL", "TR", "BL", "BR", "LR")


def test_border_ks_record_holds_the_three_statistics_per_neuron():
    maps = torch.randn(8, 3, 10, 10).numpy()
    maps[:, 1, 0, :] += 10  # neuron 1: a top-row PAN
    from pan.core.borders import border_samples, centre_samples

    stats = pan.border_ks(border_samples(maps)["T"], centre_samples(maps))
    assert isinstance(stats, pan.BorderKS)
    assert stats.ks.shape == stats.ks_plus.shape == stats.ks_minus.shape == (3,)
    assert stats.ks[1] == 1.0 and stats.ks_plus[1] == 1.0 and stats.n_border == 80


def _modules() -> list[Path]:
    return sorted(p for p in PAN_DIR.rglob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PAN_DIR)))
def test_every_module_is_short_and_marks_its_public_names(path):
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES, f"{path} is over {MAX_MODULE_LINES} lines"
    tree = ast.parse(source)
    exported = [
        node
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets)
    ]
    assert exported, f"{path} has no __all__"
    names = ast.literal_eval(exported[0].value)
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    defined |= {
        t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
    }
    defined |= {
        n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }
    assert set(names) <= defined, f"{path}: __all__ names what it does not define: {set(names) - defined}"
