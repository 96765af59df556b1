"""Colours in render specs: parsing them, and which ones a model can use.

The control plane refuses a colour that is not one, and a colour option the checkpoint's
model cannot use, before anything is recorded; the worker parses the same strings with the
same function, so the two sides never disagree about what ``#f5c542`` means. Parsing is
Pillow's :func:`PIL.ImageColor.getrgb` (pure Python, no imaging code runs): ``#rgb``,
``#rgba``, ``#rrggbb``, ``#rrggbbaa``, ``rgb(...)``, ``hsl(...)`` and the CSS names.

What each kind of model takes (the decision the spec reference documents):

* an SDF model (``target: sdf``) is shaded: every option (fill, outline, glow, shadow,
  background and their widths);
* a grey pixel model is tinted: its grey level is the fill's coverage over the background,
  so ``fill`` and ``background`` apply and the frames become colour;
* an RGBA pixel model takes only ``background`` (what its transparent pixels show);
* an RGB pixel model takes none: its colours are its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from PIL import ImageColor

if TYPE_CHECKING:
    from farm.families import ModelInfo
    from farm.specs import RenderSpec

RGBA = tuple[int, int, int, int]
COLOR_FIELDS = ("fill", "outline", "glow", "shadow", "background")
WIDTH_FIELDS = ("outline_px", "glow_px", "shadow_offset", "smooth_px")
# What a frame shows when the spec names no colour: white shapes on black, like the grey
# renders before colour existed.
DEFAULT_FILL: RGBA = (255, 255, 255, 255)
DEFAULT_BACKGROUND: RGBA = (0, 0, 0, 255)


class ColorError(ValueError):
    """Raised when a string names no colour."""


def parse_color(text: Any) -> RGBA:
    """``(r, g, b, a)`` 0-255 for a CSS-style colour string; :class:`ColorError` otherwise."""
    if not isinstance(text, str):
        raise ColorError(f"{text!r} is not a colour: write '#rrggbb', '#rrggbbaa' or a name")
    try:
        c = ImageColor.getrgb(text.strip())
    except ValueError:
        raise ColorError(
            f"{text!r} is not a colour: write '#rgb', '#rrggbb', '#rrggbbaa' or a CSS name"
        ) from None
    return (c[0], c[1], c[2], c[3] if len(c) == 4 else 255)


def allowed_options(info: ModelInfo) -> frozenset[str] | None:
    """The colour options the model can use; None when it is not known yet (a folder of
    images whose channels the data decides at training time)."""
    if info.target == "sdf":
        return frozenset(COLOR_FIELDS + WIDTH_FIELDS)
    if info.channels is None:
        return None
    return {
        1: frozenset({"fill", "background"}),
        4: frozenset({"background"}),
    }.get(info.channels, frozenset())


def _why_not(info: ModelInfo, option: str) -> str:
    if info.family == "lstm":
        return "a rollout shows its frame VAE's grey frames and takes no colour options"
    if info.channels == 3:
        return "an RGB pixel model renders its own colours and takes no colour options"
    if info.channels == 4:
        return "an RGBA pixel model takes only 'background' (what its transparent pixels show)"
    return (
        f"{option!r} needs an SDF model (target: sdf); a grey pixel model takes only "
        "'fill' and 'background' (it is tinted)"
    )


def _sections(spec: RenderSpec) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if spec.colors is not None:
        yield "colors", spec.colors.model_dump(exclude_none=True)
    for i, shot in enumerate(spec.storyboard or []):
        if shot.colors is not None:
            yield f"storyboard.{i}.colors", shot.colors.model_dump(exclude_none=True)


def colour_problems(spec: RenderSpec, info: ModelInfo) -> list[tuple[str, str]]:
    """``(field, reason)`` for each colour that is not a colour and each colour option the
    model cannot use (see the module docstring for what each model takes)."""
    out: list[tuple[str, str]] = []
    allowed = allowed_options(info)
    if spec.mode == "rollout":  # the LSTM's frame VAE renders grey frames as they are
        allowed = frozenset()
    for where, section in _sections(spec):
        for option, value in section.items():
            if option in COLOR_FIELDS:
                try:
                    parse_color(value)
                except ColorError as e:
                    out.append((f"{where}.{option}", str(e)))
                    continue
            if allowed is not None and option not in allowed:
                out.append((f"{where}.{option}", _why_not(info, option)))
    return out


def merged_sections(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The colours each shot renders with (a shot's own over the spec's), or the spec's
    alone when there are no shots; ``spec`` is a render spec as stored (a dict)."""
    top = {k: v for k, v in (spec.get("colors") or {}).items() if v is not None}
    shots = spec.get("storyboard") or []
    if not shots:
        return [top]
    out = []
    for shot in shots:
        own = {k: v for k, v in (shot.get("colors") or {}).items() if v is not None}
        out.append({**top, **own})
    return out


def output_channels(info: ModelInfo, looks: Sequence[Mapping[str, Any]]) -> int | None:
    """Channels of the frames a render writes: 1 grey, 3 RGB, 4 RGBA; None when the
    model's channels are not known yet. ``looks`` come from :func:`merged_sections`.

    An SDF model or a tinted grey model renders RGB, or RGBA when some background is not
    opaque (the default background is opaque black); an RGBA model stays RGBA unless every
    look has an opaque background.
    """
    backgrounds = [parse_color(c.get("background") or "#000") for c in looks]
    opaque = all(bg[3] == 255 for bg in backgrounds)
    if info.target == "sdf":
        return 3 if opaque else 4
    if info.channels is None:
        return None
    if info.channels == 1:
        tinted = any(c.get("fill") or c.get("background") for c in looks)
        return (3 if opaque else 4) if tinted else 1
    if info.channels == 4:
        return 3 if opaque and all(c.get("background") for c in looks) else 4
    return 3
