"""Convolutional stacks that grow with the image size: one stage per doubling.

The VAE (and the LSTM's frame VAE) and the GAN share the rule: from a ``base_size`` square
(4x4 by default) to ``image_size``, one stride-2 stage per doubling, so a 16 px model has two
stages, a 128 px one five. Widths double as the resolution halves, from ``width`` at the
finest stage, capped at ``max_width`` so the deep stages of a 128 px model do not explode in
parameters. At 16 px with the default widths the modules built here are exactly the layers
(and state-dict keys) of the original two-stage 16 px models, so their checkpoints load.

Checkpoints written before the stages existed have no ``base_size`` in their config: they
were two stages from ``image_size // 4`` at any size (:func:`legacy_config`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

SIZES = (8, 16, 32, 64, 128, 256)  # what the spec accepts; 256 is meant for a GPU
IMAGE_CHANNELS = (1, 3, 4)


def stage_count(image_size: int, base_size: int) -> int:
    """How many doublings lead from ``base_size`` to ``image_size`` (at least one); raises
    ValueError naming ``image_size`` when it is not ``base_size`` times a power of two."""
    if base_size < 1 or image_size <= base_size or image_size % base_size:
        raise ValueError(
            f"image_size must be base_size ({base_size}) times a power of two >= 2, "
            f"got {image_size}"
        )
    ratio = image_size // base_size
    if ratio & (ratio - 1):
        raise ValueError(
            f"image_size must be base_size ({base_size}) times a power of two, got {image_size}"
        )
    return ratio.bit_length() - 1


def stage_widths(width: int, stages: int, max_width: int) -> list[int]:
    """Widths of the stages' outputs, finest first: ``width``, ``2 width``, ... capped."""
    return [min(width * 2**i, max_width) for i in range(stages)]


def legacy_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A stored config made complete: one from before the stages (no ``base_size``) was two
    stages from ``image_size // 4``, grey, pixels, at any size; newer ones are unchanged."""
    out = dict(config)
    if "base_size" not in out:
        out["base_size"] = int(out.get("image_size", 16)) // 4
    return out


def conv_encoder(in_channels: int, widths: list[int]) -> list[nn.Module]:
    """Stride-2 4x4 convolutions with LeakyReLU, one per stage: ``(B, C, S, S)`` to
    ``(B, widths[-1], base, base)``."""
    layers: list[nn.Module] = []
    prev = in_channels
    for w in widths:
        layers += [nn.Conv2d(prev, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        prev = w
    return layers


def deconv_decoder(widths: list[int], out_channels: int) -> list[nn.Module]:
    """The mirror of :func:`conv_encoder`: transposed stride-2 convolutions from
    ``(B, widths[-1], base, base)`` to ``(B, out_channels, S, S)``, no final activation."""
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1, 0, -1):
        layers += [nn.ConvTranspose2d(widths[i], widths[i - 1], 4, stride=2, padding=1)]
        layers += [nn.LeakyReLU(0.2)]
    layers.append(nn.ConvTranspose2d(widths[0], out_channels, 4, stride=2, padding=1))
    return layers


def upsample_generator(base_width: int, widths: list[int], out_channels: int) -> list[nn.Module]:
    """Generator stages from ``(B, base_width, base, base)``: nearest 2x upsampling, 3x3
    conv, BatchNorm, ReLU per stage (``widths`` coarsest first), then a 3x3 conv to
    ``out_channels``. Nearest plus conv avoids the checkerboard of transposed convolutions."""
    layers: list[nn.Module] = []
    prev = base_width
    for w in widths:
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(prev, w, 3, padding=1)]
        layers += [nn.BatchNorm2d(w), nn.ReLU()]
        prev = w
    layers.append(nn.Conv2d(prev, out_channels, 3, padding=1))
    return layers


def sn_discriminator(in_channels: int, width: int, widths: list[int]) -> list[nn.Module]:
    """Spectrally normalised discriminator trunk: a 3x3 conv to ``width``, one stride-2 4x4
    conv per stage (``widths``, finest first), then a 3x3 conv at the base resolution."""
    layers: list[nn.Module] = [spectral_norm(nn.Conv2d(in_channels, width, 3, padding=1))]
    layers.append(nn.LeakyReLU(0.1))
    prev = width
    for w in widths:
        layers += [spectral_norm(nn.Conv2d(prev, w, 4, stride=2, padding=1)), nn.LeakyReLU(0.1)]
        prev = w
    layers += [spectral_norm(nn.Conv2d(prev, prev, 3, padding=1)), nn.LeakyReLU(0.1)]
    return layers
