"""``kind: train``: the family, the data set and its options, and the hyperparameters, checked
against each other before anything is recorded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from farm.charset import CharsetError, parse_charset
from farm.families import (
    BUILTIN,
    IMAGE_CHANNELS,
    IMAGE_SIZES,
    LABELLED,
    SEQUENCE_FAMILIES,
    default_channels,
    family_info,
    has_shapes,
    is_labelled,
    known_families,
    shape_cvae_defaults,
    size_defaults,
)
from farm.specs.common import _DATASET_NAMES, _GLYPH_FIELDS, DATASET_PREFIXES, DATASETS, _Spec


class FrameVAESpec(BaseModel):
    """The frame VAE an LSTM job trains first; unset fields take the LSTM's ``vae`` defaults.
    Its latent size is the job's ``latent_dim``, which the LSTM models."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int | None = Field(default=None, ge=1, le=100_000)
    channels: int | None = Field(default=None, ge=1, le=512)
    batch_size: int | None = Field(default=None, ge=1, le=65_536)
    lr: float | None = Field(default=None, gt=0, le=1)


class TrainSpec(_Spec):
    """Train a model family on a data set; the checkpoint is the job's artifact.

    Hyperparameters left out take the family's tuned defaults (:mod:`farm.families`), so the
    stored spec always says exactly what was trained.
    """

    kind: Literal["train"]
    model: str = Field(default="vae", description="vae, gan, lstm or a farm.models plugin")
    dataset: str = Field(
        default="digits",
        description=f"{_DATASET_NAMES} or glyphs:<folder of .ttf/.otf fonts>",
    )
    target: Literal["pixels", "sdf"] = Field(
        default="pixels",
        description="what the model learns: pixels, or a signed distance field of shapes "
        "(glyphs, sprites, images with alpha) that renders sharp at any size",
    )
    channels: int | None = Field(
        default=None,
        description="1 grey, 3 RGB, 4 RGBA; default from the data set (sdf: 1)",
        json_schema_extra={"enum": list(IMAGE_CHANNELS)},
    )
    charset: str | None = Field(
        default=None, max_length=10_000, description="glyphs: the classes, e.g. A-Z0-9"
    )
    fonts: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=1000, description="glyphs: font file stems to train on"
    )
    heldout_fonts: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=1000, description="glyphs: fonts kept out for evaluation"
    )
    sdf_spread_px: float | None = Field(
        default=None, ge=0.5, le=64, description="sdf: distance (px at image_size) of +-1"
    )
    conditional: bool = Field(default=False, description="class-conditional (needs labels)")
    epochs: int | None = Field(default=None, ge=1, le=100_000, description="vae, lstm")
    steps: int | None = Field(default=None, ge=1, le=10_000_000, description="gan")
    batch_size: int = Field(default=64, ge=1, le=65_536)
    lr: float = Field(default=2e-3, gt=0, le=1)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    latent_dim: int = Field(default=8, ge=1, le=512)
    kl_warmup_epochs: int | None = Field(
        default=None, ge=0, le=100_000, strict=True,
        description="vae: epochs over which the KL term's weight ramps from 0 to 1 (0: none); "
        "default 0",
    )  # fmt: skip
    min_std: float | None = Field(
        default=None, ge=0, lt=1, strict=True, allow_inf_nan=False,
        description="vae: a floor under the posterior's standard deviation, so prior samples "
        "decode like the training glyphs (0: none); default 0.5 for a conditional vae on "
        "glyphs or sprites, 0 otherwise",
    )  # fmt: skip
    conditioning: Literal["concat", "film"] | None = Field(
        default=None,
        description="conditional vae: how the decoder sees the class, at its dense layer only "
        "(concat) or also scaling and shifting every stage (film); default concat",
    )
    image_size: int = Field(
        default=16, ge=4, le=256, multiple_of=4, description="8, 16, 32, 64, 128 or 256"
    )
    checkpoint_every: int = Field(
        default=5, ge=1, le=10_000_000, description="epochs (vae, lstm) or steps (gan)"
    )
    hidden: int | None = Field(default=None, ge=1, le=4096, description="lstm width")
    clips: int | None = Field(default=None, ge=1, le=100_000, description="lstm training clips")
    frame_vae: FrameVAESpec | None = Field(default=None, description="lstm: its frame VAE")
    output: str | None = Field(
        default=None, description="checkpoint path under the output root (.safetensors)"
    )

    @model_validator(mode="before")
    @classmethod
    def _family_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        info = family_info(str(data.get("model", "vae")))
        if info is None:
            return data
        out = dict(data)
        d = info.defaults
        out.setdefault("image_size", info.image_size)
        # The tuned row for the size first (a 64 px model needs a wider latent than 16 px).
        size = out["image_size"]
        dataset_name = out.get("dataset", "digits")
        if isinstance(dataset_name, str) and out.get("conditional") is True:
            for key, value in shape_cvae_defaults(info.name, dataset_name, True).items():
                out.setdefault(key, value)
        if isinstance(size, int) and not isinstance(size, bool):
            for key, value in size_defaults(info.name, size).items():
                if key != "width":
                    out.setdefault(key, value)
        out.setdefault(info.unit, d[info.unit])
        if info.name == "vae":
            out.setdefault("kl_warmup_epochs", d["kl_warmup_epochs"])
            out.setdefault("min_std", d["min_std"])
            if out.get("conditional") is True:
                out.setdefault("conditioning", d["conditioning"])
        for key in ("batch_size", "lr"):
            out.setdefault(key, d[key])
        out.setdefault("latent_dim", info.extra.get("latent_dim", d.get("latent_dim", 8)))
        out.setdefault("checkpoint_every", info.checkpoint_every)
        dataset = out.get("dataset", "moving-digits" if info.name == "lstm" else "digits")
        if isinstance(dataset, str) and out.get("channels") is None:
            channels = 1 if out.get("target") == "sdf" else default_channels(dataset)
            if channels is not None:
                out["channels"] = channels
        if info.name in ("gan",) and "conditional" not in out:
            out["conditional"] = is_labelled(str(out.get("dataset", "digits")))
        if info.name in SEQUENCE_FAMILIES:
            out.setdefault("hidden", d["hidden"])
        if info.name == "lstm":
            out.setdefault("hidden", d["hidden"])
            out.setdefault("clips", d["train_clips"])
            out.setdefault("dataset", "moving-digits")
        return out

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        known = known_families()
        if v not in known:
            raise ValueError(f"unknown model family {v!r}: use one of {', '.join(known)}")
        return v

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        if v in DATASETS:
            return v
        for prefix in DATASET_PREFIXES:
            if v.startswith(prefix) and len(v) > len(prefix):
                return v
        raise ValueError(f"unknown data set {v!r}: use {_DATASET_NAMES} or glyphs:<folder>")

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: int | None) -> int | None:
        if v is not None and v not in IMAGE_CHANNELS:
            raise ValueError(f"must be 1 (grey), 3 (RGB) or 4 (RGBA), got {v}")
        return v

    @field_validator("charset")
    @classmethod
    def _charset(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse_charset(v)
            except CharsetError as e:
                raise ValueError(str(e)) from None
        return v

    def dataset_options(self) -> dict[str, Any]:
        """What the worker passes to ``load_dataset(..., options=...)``."""
        return dataset_options(self.model_dump(mode="json"))

    @field_validator("output")
    @classmethod
    def _checkpoint_suffix(cls, v: str | None) -> str | None:
        if v is not None and not v.endswith(".safetensors"):
            raise ValueError("a checkpoint path must end in .safetensors")
        return v

    def family_problems(self) -> list[tuple[str, str]]:
        """Fields that do not fit the chosen family (only built-in families are checked)."""
        info = BUILTIN.get(self.model)
        if info is None:
            return []
        out: list[tuple[str, str]] = []
        other = "steps" if info.unit == "epochs" else "epochs"
        if getattr(self, other) is not None:
            out.append((other, f"{self.model} trains for {info.unit}, not {other}"))
        if not any(
            self.dataset == d or (d.endswith(":") and self.dataset.startswith(d))
            for d in info.datasets
        ):
            out.append(("dataset", f"{self.model} cannot train on {self.dataset!r}"))
        if (
            self.conditional
            and self.model not in SEQUENCE_FAMILIES
            and (self.model == "lstm" or not is_labelled(self.dataset))
        ):
            labelled = ", ".join([*sorted(LABELLED), "glyphs:<folder>"])
            out.append(("conditional", f"needs a labelled data set ({labelled})"))
        if self.kl_warmup_epochs is not None:
            if self.model != "vae":
                out.append(("kl_warmup_epochs", "only a vae job has this field"))
            elif self.epochs is not None and self.kl_warmup_epochs > self.epochs:
                out.append(
                    (
                        "kl_warmup_epochs",
                        f"{self.kl_warmup_epochs} is more than the {self.epochs} epochs: the "
                        "KL weight would never reach 1",
                    )
                )
        if self.min_std is not None and self.model != "vae":
            out.append(("min_std", "only a vae job has this field"))
        if self.conditioning is not None and (self.model != "vae" or not self.conditional):
            out.append(("conditioning", "only a conditional vae job has this field"))
        if self.model not in ("lstm", *SEQUENCE_FAMILIES):
            for f in ("hidden", "clips", "frame_vae"):
                if getattr(self, f) is not None:
                    out.append((f, "only an lstm job has this field"))
        out += self._sequence_problems()
        if self.model == "lstm" and self.dataset == "moving-digits" and self.image_size < 8:
            out.append(("image_size", "moving digits need image_size >= 8"))
        if self.image_size not in IMAGE_SIZES:
            sizes = ", ".join(map(str, IMAGE_SIZES))
            out.append(("image_size", f"the {self.model} architecture is built for {sizes}"))
        return out + self._data_problems()

    def _data_problems(self) -> list[tuple[str, str]]:
        """Target, channels and glyph options that do not fit the data set or each other."""
        out: list[tuple[str, str]] = []
        glyphs = self.dataset == "glyphs" or self.dataset.startswith("glyphs:")
        if self.target == "sdf":
            if self.model == "lstm":
                out.append(("target", "the lstm's frame VAE learns pixels, not a field"))
            elif has_shapes(self.dataset) is False:
                out.append(
                    (
                        "target",
                        f"sdf needs shapes to measure, and {self.dataset!r} has none: use "
                        "glyphs, sprites or images:<folder> of images with alpha",
                    )
                )
            if self.channels not in (None, 1):
                out.append(("channels", "an sdf model learns one channel, the field"))
        elif self.sdf_spread_px is not None:
            out.append(("sdf_spread_px", "only a target: sdf job uses it"))
        if not glyphs and self.dataset != "strokes":
            for f in _GLYPH_FIELDS:
                if getattr(self, f) is not None:
                    out.append((f, "only a glyphs or strokes data set has this field"))
        return out

    # --- motion and strokes (issue 13) ---
    def _sequence_problems(self) -> list[tuple[str, str]]:
        """The fields a motion or strokes job takes: ``hidden`` (both), ``clips`` (clips per
        action of ``dataset: motion``); not the LSTM's frame VAE."""
        if self.model not in SEQUENCE_FAMILIES:
            return []
        out: list[tuple[str, str]] = []
        if self.frame_vae is not None:
            out.append(("frame_vae", "only an lstm job has this field"))
        if self.clips is not None and self.dataset != "motion":
            out.append(("clips", "only dataset: motion has clips per action"))
        if self.conditional:
            out.append(("conditional", f"a {self.model} model is always conditioned; leave it out"))
        return out


def dataset_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The data set's own settings from a (stored) train spec, for ``load_dataset(...,
    options=...)``: only those given, since each loader refuses options it does not take, so
    a spec stored before these fields existed loads its set exactly as it did."""
    dataset = str(spec.get("dataset", "digits"))
    target = spec.get("target") or "pixels"
    opts: dict[str, Any] = {}
    if dataset in ("glyphs", "sprites") or dataset.startswith("glyphs:"):
        opts["target"] = target  # these sets default to sdf, a spec to pixels
    elif target == "sdf":
        opts["target"] = "sdf"
    for key in ("channels", *_GLYPH_FIELDS, "sdf_spread_px"):
        if spec.get(key) is not None:
            opts[key] = spec[key]
    if dataset == "motion" and spec.get("model") == "motion" and spec.get("clips") is not None:
        opts["clips"] = spec["clips"]
    return opts
