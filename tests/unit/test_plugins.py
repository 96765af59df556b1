"""Unit tests for the model family registry and ``farm.models`` entry-point plugins."""

from __future__ import annotations

import importlib.metadata
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from torch import nn

import workers.models as registry
from workers.models import (
    FAMILIES,
    ModelFamily,
    PluginError,
    UnknownModelFamily,
    get_family,
    register_family,
)


@dataclass
class ToyConfig:
    width: int = 2


class Toy(nn.Module):
    def __init__(self, cfg: ToyConfig) -> None:
        super().__init__()
        self.lin = nn.Linear(cfg.width, 1)


TOY = ModelFamily(name="toy", model_cls=Toy, config_cls=ToyConfig)


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    before = dict(FAMILIES)
    yield
    FAMILIES.clear()
    FAMILIES.update(before)
    sys.modules.pop("toy_plugin", None)


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, **targets: str) -> list[str]:
    """Make importlib.metadata.entry_points report ``name -> "module:attr"`` entries."""
    calls: list[str] = []

    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        calls.append(group)
        return [importlib.metadata.EntryPoint(n, v, group) for n, v in targets.items()]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    mod = types.ModuleType("toy_plugin")
    mod.family = ModelFamily(name="toy", model_cls=Toy, config_cls=ToyConfig)  # type: ignore[attr-defined]
    mod.make = lambda: ModelFamily(name="toy", model_cls=Toy, config_cls=ToyConfig)  # type: ignore[attr-defined]
    mod.wrong = 42  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "toy_plugin", mod)
    return calls


def test_builtin_families() -> None:
    for name in ("vae", "gan", "lstm"):
        fam = get_family(name)
        assert fam.name == name
        assert fam.train is not None
        assert fam.defaults


def test_register_family_programmatically() -> None:
    with pytest.raises(UnknownModelFamily):
        get_family("toy")
    register_family(TOY)
    assert get_family("toy") is TOY
    model = get_family("toy").model_cls(ToyConfig(width=3))
    assert isinstance(model, Toy)
    register_family(TOY)  # the same family again is a no-op
    other = ModelFamily(name="toy", model_cls=Toy, config_cls=dict)
    with pytest.raises(ValueError, match="already registered"):
        register_family(other)
    register_family(other, replace=True)
    assert get_family("toy") is other
    with pytest.raises(TypeError):
        register_family("toy")  # type: ignore[arg-type]


@pytest.mark.parametrize("target", ["toy_plugin:family", "toy_plugin:make"])
def test_entry_point_plugin_loads_on_demand(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    calls = _fake_entry_points(monkeypatch, toy=target)
    get_family("vae")
    assert calls == []  # built-ins never touch the plugins
    fam = get_family("toy")
    assert calls == ["farm.models"]
    assert fam.model_cls is Toy
    assert "toy" in FAMILIES


def test_broken_plugin_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, toy="no_such_module_xyz:family", other="toy_plugin:wrong")
    with pytest.raises(PluginError, match=r"plugin 'toy'.*no_such_module_xyz"):
        get_family("toy")
    with pytest.raises(PluginError, match=r"plugin 'other'.*not a ModelFamily"):
        get_family("other")
    # A broken plugin does not affect unrelated lookups.
    assert get_family("gan").name == "gan"


def test_plugin_name_must_match(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, renamed="toy_plugin:family")
    with pytest.raises(PluginError, match="names must match"):
        registry.load_plugins()


def test_unknown_family_lists_known(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch)
    with pytest.raises(UnknownModelFamily, match=r"known families: gan, lstm, (\w+, )*vae"):
        get_family("nope")
