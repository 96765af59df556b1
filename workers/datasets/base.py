"""What every data set resolves to (:class:`Dataset`), the request a loader receives, and the
helpers the loaders share: option parsing, channel conversion and confining files."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from farm import datafiles
from farm.datafiles import DataFileError
from farm.inputs import OutsideInputRoots, confine_input
from workers.sdf import DEFAULT_SPREAD_PX

CHANNELS = (1, 3, 4)
SPLITS = ("train", "heldout")
TARGETS = ("pixels", "sdf")
# ITU-R BT.601 luma, the weights Pillow's "L" conversion uses, so a colour image turned grey
# here matches the same image decoded grey by Pillow.
_LUMA = (0.299, 0.587, 0.114)


class DatasetError(ValueError):
    """A data set is missing, empty or cannot be decoded.

    Raised while loading, before any training starts, so a bad path fails the job in seconds
    with a message naming it rather than minutes later inside the training loop.
    """


@dataclass
class Dataset:
    """A resolved data set. Models and trainers are written against exactly these fields.

    ``data``: float32 in [0, 1], images ``(N, C, S, S)`` or clips ``(N, T, C, S, S)``, with C
    1 (grey), 3 (RGB) or 4 (RGBA: straight, not premultiplied, alpha last).
    ``labels`` ``(N,)`` int64 with ``classes`` naming each label; ``sdf`` ``(N, 1, S, S)``
    float32 in [-1, 1] (:mod:`workers.sdf`: positive inside, distance in pixels at size S over
    ``sdf_spread_px``, clamped) for sets of shapes; ``factors``: the generating factors, each
    ``(N,)`` or ``(N, 3)``; ``styles`` ``(N,)`` int64 indexing ``style_names`` (glyph fonts).
    """

    name: str
    data: torch.Tensor
    labels: torch.Tensor | None = None
    classes: list[str] | None = None
    sdf: torch.Tensor | None = None
    sdf_spread_px: float = DEFAULT_SPREAD_PX
    factors: dict[str, torch.Tensor] | None = None
    styles: torch.Tensor | None = None
    style_names: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # provenance: fonts held out, counts

    def __post_init__(self) -> None:
        if self.data.ndim not in (4, 5) or self.data.shape[-3] not in CHANNELS:
            raise ValueError(f"data must be (N, C, S, S) or (N, T, C, S, S) with C in {CHANNELS}")
        n = self.data.shape[0]
        for what, t in (("labels", self.labels), ("styles", self.styles)):
            if t is not None and tuple(t.shape) != (n,):
                raise ValueError(f"{what} must be ({n},), got {tuple(t.shape)}")
        if self.sdf is not None and tuple(self.sdf.shape) != (n, 1, *self.data.shape[-2:]):
            raise ValueError(f"sdf must be ({n}, 1, S, S), got {tuple(self.sdf.shape)}")
        for key, t in (self.factors or {}).items():
            if t.shape[0] != n:
                raise ValueError(f"factor {key!r} has {t.shape[0]} rows for {n} samples")

    @property
    def channels(self) -> int:
        return int(self.data.shape[-3])

    @property
    def is_sequences(self) -> bool:
        return self.data.ndim == 5

    @property
    def has_shapes(self) -> bool:
        return self.sdf is not None


@dataclass(frozen=True)
class Request:
    """What a loader is asked for: ``source`` is the part after ``kind:`` (a folder or a
    file), or None for a built-in set."""

    name: str
    source: str | None
    size: int
    seed: int
    options: Mapping[str, Any]
    roots: Sequence[Path] | None

    def path(self) -> str:
        """The folder or file of a ``kind:<path>`` set."""
        if not self.source:
            raise DatasetError(f"{self.name}: needs a path after the colon")
        return self.source

    def check_options(self, allowed: Sequence[str]) -> None:
        """Refuse options this set does not read: a typo must not be silently ignored."""
        unknown = sorted(set(self.options) - set(allowed))
        if unknown:
            raise DatasetError(
                f"{self.name}: unknown option(s) {', '.join(unknown)} "
                f"(this set takes {', '.join(sorted(allowed)) or 'none'})"
            )

    def channels(self) -> int | None:
        value = self.options.get("channels")
        if value is None:
            return None
        if isinstance(value, bool) or value not in CHANNELS:
            raise DatasetError(f"{self.name}: channels must be 1, 3 or 4, got {value!r}")
        return int(value)

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self.options.get(key, default)
        if value not in choices:
            raise DatasetError(f"{self.name}: {key} must be one of {choices}, got {value!r}")
        return str(value)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise DatasetError(f"{self.name}: {key} must be an integer in {low}..{high}")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.options.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise DatasetError(f"{self.name}: {key} must be a number in {low}..{high}")
        return float(value)

    def names(self, key: str) -> list[str] | None:
        """A list option given as a list of strings or one comma-separated string."""
        value = self.options.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
            return list(value)
        raise DatasetError(f"{self.name}: {key} must be a list of names, got {value!r}")

    def shape_size(self, low: int = 8, high: int = 512) -> int:
        """Drawn sets render at any size in ``low..high``."""
        if not low <= self.size <= high:
            raise DatasetError(f"{self.name} needs image_size in {low}..{high}, got {self.size}")
        return self.size


Loader = Callable[[Request], Dataset]


def convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``x`` ``(..., C, H, W)`` with C in 1/3/4, converted to ``channels``.

    grey -> RGB repeats; anything -> RGBA adds an opaque alpha; RGB -> grey is BT.601 luma;
    RGBA -> RGB or grey composites over black (``rgb * alpha``) rather than dropping alpha:
    the colour under a transparent pixel is arbitrary (often left-over paint), and over black
    keeps the digits' convention of bright ink on a dark ground.
    """
    have = x.shape[-3]
    if channels not in CHANNELS or have not in CHANNELS:
        raise ValueError(f"channels must be in {CHANNELS}, got {have} -> {channels}")
    if have == channels:
        return x
    if have == 4:
        x = x[..., :3, :, :] * x[..., 3:, :, :]  # over black
        have = 3
    if channels == 1:
        w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return (x * w).sum(dim=-3, keepdim=True).clamp_(0.0, 1.0)
    rgb = x if have == 3 else x.expand(*x.shape[:-3], 3, *x.shape[-2:])
    if channels == 3:
        return rgb.contiguous()
    alpha = torch.ones_like(rgb[..., :1, :, :])
    return torch.cat([rgb, alpha], dim=-3)


def confine_files(files: Sequence[Path], roots: Sequence[Path] | None) -> None:
    """With ``roots`` (:func:`farm.inputs.input_roots`), a file of a folder that links outside
    them fails the load: the folder was confined at submission, its files were not."""
    if roots is None:
        return
    for p in files:
        try:
            confine_input(roots, str(p))
        except OutsideInputRoots as e:
            raise DatasetError(str(e)) from None


def folder_files(folder: str | Path, suffixes: frozenset[str], what: str) -> list[Path]:
    """:func:`farm.datafiles.folder_files`, its errors as :class:`DatasetError`."""
    try:
        return datafiles.folder_files(folder, suffixes, what)
    except DataFileError as e:
        raise DatasetError(str(e)) from None
