"""Registry of trainable model families, looked up by the name stored in jobs and checkpoints.

A registry (rather than imports scattered through the workers) means a checkpoint's
``family`` string is the single thing needed to rebuild its model. Built-in families are
registered here; others come from installed packages through the ``farm.models`` entry-point
group (see ``docs/plugins.md``), loaded only when a name is not built in, so a broken
plugin can only fail the jobs that ask for it.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from workers.models import gan as _gan
from workers.models import lstm as _lstm
from workers.models import motion as _motion
from workers.models import strokes as _strokes
from workers.models import vae as _vae
from workers.models.gan import GANConfig, Generator
from workers.models.lstm import LatentLSTM, LSTMConfig
from workers.models.motion import MotionConfig, MotionRNN
from workers.models.strokes import StrokeDecoder, StrokesConfig
from workers.models.vae import ConvVAE, VAEConfig

ENTRY_POINT_GROUP = "farm.models"


class UnknownModelFamily(KeyError):
    """A job or checkpoint names a model family this worker does not know."""

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message, wrapping it in quotes.
        return str(self.args[0]) if self.args else ""


class PluginError(RuntimeError):
    """A ``farm.models`` entry point failed to import or did not yield a ModelFamily."""


@dataclass(frozen=True)
class ModelFamily:
    """What a worker needs to rebuild and train a family.

    ``build(meta["config"])`` rebuilds the saved module (for the GAN, the
    EMA generator); ``train`` is the family's training function and ``defaults`` its tuned
    hyperparameters, both optional so a minimal plugin is just a module and a config class.
    """

    name: str
    model_cls: type[nn.Module]
    config_cls: type
    train: Callable[..., Any] | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # For a plugin to run as farm jobs without editing the farm: ``farm_trainer(job)`` gets the
    # farm's TrainJob (data set, progress, stop checks) and returns a Trained; ``decoder(model,
    # z, class_weights, width, height, batch_size, device)`` yields uint8 frame batches for
    # the latent_walk mode. The built-ins' own are in workers/trainers and workers/modes.
    farm_trainer: Callable[[Any], Any] | None = None
    decoder: Callable[..., Any] | None = None

    def build(self, config: Mapping[str, Any]) -> nn.Module:
        """The module for a checkpoint's stored ``config``: through the config class's
        ``from_dict`` where it has one (the built-ins', which read configs written before
        their newer fields existed), else ``config_cls(**config)``."""
        from_dict = getattr(self.config_cls, "from_dict", None)
        cfg = from_dict(config) if callable(from_dict) else self.config_cls(**config)
        return self.model_cls(cfg)


FAMILIES: dict[str, ModelFamily] = {
    "vae": ModelFamily(
        name="vae",
        model_cls=ConvVAE,
        config_cls=VAEConfig,
        train=_vae.train_vae,
        defaults=_vae.DEFAULTS,
    ),
    "gan": ModelFamily(
        name="gan",
        model_cls=Generator,
        config_cls=GANConfig,
        train=_gan.train_gan,
        defaults=_gan.DEFAULTS,
    ),
    "lstm": ModelFamily(
        name="lstm",
        model_cls=LatentLSTM,
        config_cls=LSTMConfig,
        train=_lstm.train_lstm,
        defaults=_lstm.DEFAULTS,
    ),
    "motion": ModelFamily(
        name="motion",
        model_cls=MotionRNN,
        config_cls=MotionConfig,
        train=_motion.train_motion,
        defaults=_motion.DEFAULTS,
    ),
    "strokes": ModelFamily(
        name="strokes",
        model_cls=StrokeDecoder,
        config_cls=StrokesConfig,
        train=_strokes.train_strokes,
        defaults=_strokes.DEFAULTS,
    ),
}


def register_family(family: ModelFamily, *, replace: bool = False) -> ModelFamily:
    """Add ``family`` to :data:`FAMILIES`; re-registering a name needs ``replace=True`` so a
    plugin cannot silently shadow a built-in."""
    if not isinstance(family, ModelFamily):
        raise TypeError(f"expected a ModelFamily, got {type(family).__name__}")
    if not family.name:
        raise ValueError("a model family needs a non-empty name")
    existing = FAMILIES.get(family.name)
    if existing is not None and existing != family and not replace:
        raise ValueError(f"model family {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def unregister_family(name: str) -> None:
    """Remove ``name`` from the registry (for tests); unknown names are ignored."""
    FAMILIES.pop(name, None)


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> ModelFamily:
    where = f"plugin {ep.name!r} ({ep.value}) in entry-point group {ENTRY_POINT_GROUP!r}"
    try:
        obj = ep.load()
        family = obj() if callable(obj) and not isinstance(obj, ModelFamily) else obj
    except Exception as exc:
        raise PluginError(f"{where} failed to load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(family, ModelFamily):
        raise PluginError(f"{where} gave {type(family).__name__}, not a ModelFamily")
    if family.name != ep.name:
        raise PluginError(f"{where} registers family {family.name!r}; the names must match")
    return family


def load_plugins(name: str | None = None) -> list[str]:
    """Register the families from installed ``farm.models`` entry points (only the one called
    ``name`` when given) and return the names registered. Built-in names are never replaced.

    A plugin that fails to import, or yields something other than a ``ModelFamily`` (or a
    callable returning one), raises :class:`PluginError` naming it.
    """
    loaded = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if name is not None and ep.name != name:
            continue
        if ep.name in FAMILIES:
            continue
        family = _load_entry_point(ep)
        FAMILIES[family.name] = family
        loaded.append(family.name)
    return loaded


def get_family(name: str) -> ModelFamily:
    """Return the family registered as ``name`` (trying ``farm.models`` plugins if it is not
    registered yet) or raise :class:`UnknownModelFamily`."""
    family = FAMILIES.get(name)
    if family is None:
        load_plugins(name)
        family = FAMILIES.get(name)
    if family is None:
        known = ", ".join(sorted(FAMILIES))
        raise UnknownModelFamily(f"unknown model family {name!r}; known families: {known}")
    return family


__all__ = [
    "ENTRY_POINT_GROUP",
    "FAMILIES",
    "ConvVAE",
    "GANConfig",
    "Generator",
    "LSTMConfig",
    "LatentLSTM",
    "ModelFamily",
    "PluginError",
    "UnknownModelFamily",
    "VAEConfig",
    "get_family",
    "load_plugins",
    "register_family",
    "unregister_family",
]
