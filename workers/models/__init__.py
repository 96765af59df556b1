"""Registry of trainable model families, looked up by the name stored in jobs and checkpoints.

A registry (rather than imports scattered through the workers) means a checkpoint's
``family`` string is the single thing needed to rebuild its model.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from workers.models.vae import ConvVAE, VAEConfig


class UnknownModelFamily(KeyError):
    """A job or checkpoint names a model family this worker does not know."""

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message, wrapping it in quotes.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ModelFamily:
    name: str
    model_cls: type[nn.Module]
    config_cls: type


FAMILIES: dict[str, ModelFamily] = {
    "vae": ModelFamily(name="vae", model_cls=ConvVAE, config_cls=VAEConfig),
}


def get_family(name: str) -> ModelFamily:
    """Return the family registered as ``name`` or raise :class:`UnknownModelFamily`."""
    try:
        return FAMILIES[name]
    except KeyError:
        known = ", ".join(sorted(FAMILIES))
        raise UnknownModelFamily(
            f"unknown model family {name!r}; known families: {known}"
        ) from None


__all__ = ["FAMILIES", "ConvVAE", "ModelFamily", "UnknownModelFamily", "VAEConfig", "get_family"]
