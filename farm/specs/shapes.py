"""The pieces of a render that name what to draw: colours, storyboard shots, keyframes."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from farm.colors import parse_color

ClassRef = (
    Annotated[int, Field(ge=0, le=1_000_000)] | Annotated[str, Field(min_length=1, max_length=64)]
)
"""A class by label index (``3``) or by name (``"A"``; quote digits in YAML: ``"3"``)."""


class Colors(BaseModel):
    """Colours (CSS-style strings) and widths (output pixels) for shading an SDF model, for
    tinting a grey model and as the background of an RGBA model (docs/specs.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fill: str | None = Field(default=None, description="the shape (default white)")
    outline: str | None = Field(default=None, description="a band outside the edge")
    glow: str | None = Field(default=None, description="a soft halo outside the edge")
    shadow: str | None = Field(default=None, description="the shape again, offset, beneath")
    background: str | None = Field(default=None, description="default opaque black")
    outline_px: float | None = Field(default=None, ge=0, le=512)
    glow_px: float | None = Field(default=None, gt=0, le=1024)
    smooth_px: float | None = Field(
        default=None, ge=0, le=4, description="SDF models: blur the decoded field (model px)"
    )
    shadow_offset: tuple[float, float] | None = Field(
        default=None, description="(x, y) in output pixels, +y down"
    )

    @field_validator("fill", "outline", "glow", "shadow", "background")
    @classmethod
    def _color(cls, v: str | None) -> str | None:
        if v is not None:
            parse_color(v)  # a ColorError is a ValueError: pydantic names the field
        return v

    @field_validator("shadow_offset")
    @classmethod
    def _offset(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and max(abs(v[0]), abs(v[1])) > 1024:
            raise ValueError("a shadow offset is at most 1024 output pixels each way")
        return v


class Shot(BaseModel):
    """One storyboard shot: hold a class for ``hold`` frames, then morph into the next shot's
    class (and colours) over ``transition`` frames (the last shot's transition is ignored)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True
    )

    class_: ClassRef = Field(alias="class")
    hold: int = Field(ge=1, le=1_000_000)
    transition: int = Field(default=0, ge=0, le=1_000_000)
    colors: Colors | None = None


class LatentKeyframe(BaseModel):
    """A keyframe given as an explicit latent vector (its length must be the model's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latent: list[float] = Field(min_length=1, max_length=512)


class ClassKeyframe(BaseModel):
    """A keyframe named by class, and optionally by style: ``{class: "A", style: "cmr10"}``
    is that character in that font (a VAE's ``style_means``), so a walk of such keyframes
    morphs one letter through fonts."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True
    )

    class_: ClassRef = Field(alias="class")
    style: str | None = Field(default=None, min_length=1, max_length=128)


Keyframe = int | str | LatentKeyframe | ClassKeyframe
