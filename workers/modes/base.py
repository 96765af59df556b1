"""What a render mode gets: the loaded model and its metadata, the spec, the range length.

A mode maps frame positions (0-based in the whole range) to uint8 frames. It must be a pure
function of ``(checkpoint, spec, position)``, so any chunking renders the same pictures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from farm.colors import merged_sections, output_channels
from farm.families import ModelInfo, info_from_metadata
from farm.inputs import OutsideInputRoots, confine_input
from workers.context import PermanentError
from workers.render import FrameStyle, render_frames, render_gan_frames
from workers.shading import Look


@dataclass
class RenderJob:
    spec: dict[str, Any]
    model: nn.Module
    meta: dict[str, Any]
    total: int
    device: torch.device
    root: Path
    # Where the job may read from (farm.inputs.input_roots); empty: the output root only.
    roots: tuple[Path, ...] = ()

    def picture(self, ref: str, where: str, *, height: int | None = None) -> np.ndarray:
        """The image file ``ref`` (a spec's path, confined to the roots the job may read
        from, like its data set) as uint8 RGBA ``(h, w, 4)``, scaled to ``height`` with its
        proportions kept when given; any failure is the job's, naming ``where``."""
        from PIL import Image, ImageOps

        try:
            path = confine_input(self.roots or (self.root,), ref)
            with Image.open(path) as im:
                im.load()
                rgba = ImageOps.exif_transpose(im).convert("RGBA")
        except (OutsideInputRoots, OSError, ValueError, Image.DecompressionBombError) as e:
            raise PermanentError(f"{where}: cannot read {ref!r}: {e}") from None
        if height is not None and rgba.height != height:
            w = max(1, round(rgba.width * height / rgba.height))
            rgba = rgba.resize((w, height), Image.Resampling.LANCZOS)
        return np.asarray(rgba, dtype=np.uint8)

    @property
    def family(self) -> str:
        return str(self.meta.get("family", ""))

    @property
    def num_classes(self) -> int:
        return int(self.meta.get("config", {}).get("num_classes", 0) or 0)

    @property
    def latent_dim(self) -> int:
        return int(self.meta["config"]["latent_dim"])

    def require(self, *families: str) -> None:
        if self.family not in families and not (
            "vae" in families and plugin_decoder(self.family) is not None
        ):
            mode = self.spec.get("mode", "latent_walk")
            raise PermanentError(
                f"mode {mode!r} needs a {' or '.join(families)} checkpoint, not {self.family!r}"
            )

    @property
    def info(self) -> ModelInfo:
        return info_from_metadata(self.meta)

    def class_index(self, ref: Any, where: str) -> int:
        """A class given by label index or by name, as a label index."""
        if isinstance(ref, str):
            classes = self.info.classes
            if ref not in classes:
                raise PermanentError(f"{where}: {ref!r} is not one of the model's classes")
            return classes.index(ref)
        if isinstance(ref, bool) or not isinstance(ref, int) or ref < 0:
            raise PermanentError(f"{where}: {ref!r} is not a class index or name")
        return ref

    def frame_style(self, looks: Sequence[Look] | None = None) -> FrameStyle:
        """How this checkpoint's decoded images become frames; ``looks`` (one per frame)
        default to the spec's own colours for every frame."""
        info = self.info
        clear = info.target == "pixels" and info.channels == 4  # its own transparency
        if looks is None:
            looks = [Look.from_colors(self.spec.get("colors"), clear=clear)]
        return FrameStyle(
            target=info.target,
            channels=info.channels or 1,
            out_channels=output_channels(info, merged_sections(self.spec)) or 1,
            spread_px=info.sdf_spread_px,
            looks=tuple(looks),
            smooth_px=float((self.spec.get("colors") or {}).get("smooth_px") or 0.0),
        )

    @property
    def frame_channels(self) -> int:
        """Channels of the frames this job's modes yield (1 grey, 3 RGB, 4 RGBA), for the
        stage that opens the encoder before the first frame exists."""
        if self.family not in ("vae", "gan") or self.spec.get("mode") == "rollout":
            return 1
        return self.frame_style().out_channels

    def shot_looks(self) -> list[Look]:
        """Each storyboard shot's look (its colours over the spec's)."""
        info = self.info
        clear = info.target == "pixels" and info.channels == 4
        return [Look.from_colors(c, clear=clear) for c in merged_sections(self.spec)]

    def decode(
        self, z: torch.Tensor, weights: torch.Tensor | None, looks: Sequence[Look] | None = None
    ) -> Iterator[np.ndarray]:
        """Frames from latents (and class weights for a conditional model), coloured by
        ``looks`` (one per latent) or the spec's colours."""
        w, h, b = self.spec["width"], self.spec["height"], self.spec["batch_size"]
        if self.num_classes == 0:
            weights = None
        if self.family == "vae":
            return render_frames(self.model, z, w, h, labels=weights, batch_size=b,  # type: ignore[arg-type]
                                 device=self.device, style=self.frame_style(looks))  # fmt: skip
        if self.family == "gan":
            return render_gan_frames(self.model, z, weights, w, h, batch_size=b,
                                     device=self.device, style=self.frame_style(looks))  # fmt: skip
        decoder = DECODERS.get(self.family) or plugin_decoder(self.family)
        if decoder is None:
            raise PermanentError(f"model family {self.family!r} has no frame decoder")
        return decoder(self.model, z, weights, w, h, b, self.device)


Decoder = Callable[
    [nn.Module, torch.Tensor, torch.Tensor | None, int, int, int, torch.device],
    Iterator[np.ndarray],
]
DECODERS: dict[str, Decoder] = {
    "vae": lambda m, z, c, w, h, b, d: render_frames(
        m,  # type: ignore[arg-type]
        z,
        w,
        h,
        labels=c,
        batch_size=b,
        device=d,
    ),
    "gan": lambda m, z, c, w, h, b, d: render_gan_frames(m, z, c, w, h, batch_size=b, device=d),
}

Mode = Callable[[RenderJob, Sequence[int]], Iterator[np.ndarray]]


def plugin_decoder(family: str) -> Decoder | None:
    """A plugin family's decoder (its latents render like a VAE's through latent_walk)."""
    from workers.models import PluginError, UnknownModelFamily, get_family

    try:
        return get_family(family).decoder
    except (UnknownModelFamily, PluginError):
        return None
