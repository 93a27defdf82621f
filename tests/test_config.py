"""Configs: one place maps a profile to a preset, run-only fields are marked, rehearsal caps are visible."""
import importlib
from dataclasses import dataclass, field

import pytest

from helpers.core.config import REHEARSE_ENV, choose, model_dict, rehearsal_caps, run_field, run_keys
from helpers.models import MODELS


@dataclass
class Inner:
    width: int = 4
    budget: float = run_field(10.0)


@dataclass
class Outer:
    attrs: tuple = ("a",)
    inner: Inner = field(default_factory=Inner)
    n_eval: int = run_field(1000, rehearsal_max=100)


PRESETS = {"smoke": Outer(n_eval=10), "demo": Outer()}


def test_choose_copies_the_preset_with_overrides_and_names_unknown_fields():
    cfg = choose(PRESETS, "demo", attrs=["b", "c"], inner={"width": 8})
    assert cfg.attrs == ("b", "c") and cfg.inner.width == 8 and PRESETS["demo"].inner.width == 4
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        choose(PRESETS, "huge")
    with pytest.raises(TypeError, match="no field 'colour'"):
        choose(PRESETS, "demo", colour=1)


def test_run_keys_and_the_model_dict_leave_out_run_only_fields():
    assert run_keys(Outer()) == {"n_eval", "inner.budget"}
    assert model_dict(Outer()) == {"attrs": ("a",), "inner": {"width": 4}}


def test_rehearsal_caps_apply_only_in_a_rehearsal(monkeypatch):
    monkeypatch.delenv(REHEARSE_ENV, raising=False)
    assert choose(PRESETS, "demo").n_eval == 1000
    monkeypatch.setenv(REHEARSE_ENV, "5")
    assert choose(PRESETS, "demo").n_eval == 100 and choose(PRESETS, "smoke").n_eval == 10
    assert rehearsal_caps(Outer(n_eval=50)).n_eval == 50


@pytest.mark.parametrize("model", MODELS)
def test_every_model_has_the_same_contract_and_its_budgets_are_run_only(model):
    import importlib

    package = importlib.import_module(f"helpers.models.{model}")
    for name in ("config_for", "build_trainer", "sampler", "evaluate", "parts", "ui"):
        assert hasattr(package, name), (model, name)
    for profile in ("smoke", "demo", "full"):
        cfg = package.config_for(profile)
        keys = run_keys(cfg)
        assert {k for k in keys if k.endswith("max_seconds") or k.endswith("epochs")}, (model, keys)
        assert not any(k.split(".")[-1] in ("img_size", "z_dim", "batch_size", "lr") for k in keys), (model, keys)
        assert package.parts(cfg), model


def test_no_model_package_imports_another():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "helpers" / "models"
    for model in MODELS:
        for py in (root / model).glob("*.py"):
            for node in ast.walk(ast.parse(py.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    target = "." * node.level + node.module
                    others = [m for m in MODELS if m != model]
                    assert not any(f"models.{m}" in target or (node.level == 2 and node.module.split(".")[0] == m)
                                   for m in others), (py, target)


def test_short_names_are_attributes_of_the_package_only():
    import sys

    import helpers as H
    from helpers.models import dcgan
    from helpers.ui.viz import make_grid

    assert H.dcgan is dcgan and H.viz.make_grid is make_grid and H.paths.ROOT.name
    assert H.data.load_faces and H.gan.sample_z  # the folders themselves
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("helpers.dcgan")  # no import-system aliases: grep and editors find every module
    assert "helpers.dcgan" not in sys.modules
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        H.nope

