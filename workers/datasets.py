"""Training data: sets that ship with scikit-learn (so workers never need network access),
synthetic moving digits, and a user's own images or video decoded through ffmpeg."""

from __future__ import annotations

import math
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from farm.inputs import OutsideInputRoots, confine_input


def load_digits_images(size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the 1,797 sklearn 8x8 digits as ``(N, 1, size, size)`` float32 in [0, 1] and
    labels ``(N,)`` int64.

    Bilinear upsampling (rather than nearest) gives the VAE smooth strokes to learn, which
    makes decoded frames look like handwriting instead of blocky pixels. Ink stays bright on a
    dark background, as in the source data.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    digits = load_digits()
    x = torch.as_tensor(digits.images, dtype=torch.float32) / 16.0
    x = x.unsqueeze(1)  # (N, 1, 8, 8)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = x.clamp_(0.0, 1.0).contiguous()
    y = torch.as_tensor(digits.target, dtype=torch.int64)
    return x, y


class DatasetError(ValueError):
    """A data set is missing, empty or cannot be decoded.

    Raised while loading, before any training starts, so a bad path fails the job in seconds
    with a message naming it rather than minutes later inside the training loop.
    """


_IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
)


def moving_digits(
    n_sequences: int,
    seq_len: int,
    *,
    canvas: int = 32,
    digits_per_seq: int = 1,
    digit_size: int = 16,
    speed: tuple[float, float] = (1.5, 3.0),
    seed: int = 0,
) -> torch.Tensor:
    """Moving-MNIST-style clips of sklearn digits bouncing on a dark canvas:
    ``(N, T, 1, canvas, canvas)`` float32 in [0, 1].

    Each digit starts at a uniform position with a uniform direction and a speed drawn from
    ``speed`` (pixels per frame), and reflects off the walls, so it always stays entirely on
    the canvas. Overlapping digits combine by maximum, keeping the ink in [0, 1]. Everything is
    drawn from one NumPy generator seeded with ``seed``: a different seed gives held-out clips.
    """
    if n_sequences < 1 or seq_len < 1 or digits_per_seq < 1:
        raise ValueError("n_sequences, seq_len and digits_per_seq must be >= 1")
    if not 1 <= digit_size <= canvas:
        raise ValueError(f"digit_size must be in 1..canvas ({canvas}), got {digit_size}")
    if not 0 <= speed[0] <= speed[1]:
        raise ValueError(f"speed must be (low, high) with 0 <= low <= high, got {speed}")
    sprites = load_digits_images(digit_size)[0][:, 0].numpy()  # (M, s, s)
    rng = np.random.default_rng(seed)
    lim = float(canvas - digit_size)
    out = np.zeros((n_sequences, seq_len, canvas, canvas), dtype=np.float32)
    for i in range(n_sequences):
        for _ in range(digits_per_seq):
            sprite = sprites[rng.integers(sprites.shape[0])]
            pos = rng.uniform(0.0, lim, size=2)
            angle = rng.uniform(0.0, 2.0 * math.pi)
            vel = rng.uniform(speed[0], speed[1]) * np.array([math.sin(angle), math.cos(angle)])
            for t in range(seq_len):
                r, c = (round(float(v)) for v in pos)
                region = out[i, t, r : r + digit_size, c : c + digit_size]
                np.maximum(region, sprite, out=region)
                pos += vel
                for axis in range(2):
                    if pos[axis] < 0.0:
                        pos[axis], vel[axis] = -pos[axis], -vel[axis]
                    elif pos[axis] > lim:
                        pos[axis], vel[axis] = 2.0 * lim - pos[axis], -vel[axis]
                np.clip(pos, 0.0, lim, out=pos)  # a speed above lim could still overshoot
    return torch.from_numpy(out).unsqueeze(2)  # (N, T, 1, canvas, canvas)


def _ffmpeg_gray(source: Path, size: int, *, max_frames: int | None) -> np.ndarray:
    """Decode ``source`` through ffmpeg into gray frames ``(N, size, size)`` uint8.

    Scales the shorter side to ``size`` and centre-crops, so images of any aspect ratio come
    out square without distortion. stderr goes to a temporary file rather than a pipe: a
    chatty decoder can fill a pipe's buffer and deadlock against our read of stdout.
    """
    import imageio_ffmpeg

    vf = (
        f"scale={size}:{size}:force_original_aspect_ratio=increase:flags=area,"
        f"crop={size}:{size},format=gray"
    )
    args = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error"]
    args += ["-i", str(source), "-vf", vf, "-an", "-sn"]
    if max_frames is not None:
        args += ["-frames:v", str(max_frames)]
    args += ["-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=err, check=False)
        err.seek(0)
        message = err.read().decode("utf-8", errors="replace").strip()[-500:]
    frame_bytes = size * size
    raw = proc.stdout
    if proc.returncode != 0 or len(raw) < frame_bytes:
        why = message or f"ffmpeg exited with {proc.returncode} and produced no frames"
        raise DatasetError(f"cannot decode {source}: {why}")
    n = len(raw) // frame_bytes
    arr = np.frombuffer(raw[: n * frame_bytes], dtype=np.uint8)
    return arr.reshape(n, size, size)  # (N, S, S)


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames.astype(np.float32) / 255.0).unsqueeze(1)  # (N, 1, S, S)


def load_image_folder(
    folder: str | Path, size: int, *, roots: Sequence[Path] | None = None
) -> torch.Tensor:
    """Load every image in ``folder`` (not recursive) as ``(N, 1, size, size)`` float32 in
    [0, 1], sorted by file name.

    Images of any size and colour are converted to grayscale, their shorter side scaled to
    ``size`` and centre-cropped. Decoding goes through the ffmpeg binary that imageio-ffmpeg
    ships, so no imaging library is needed on the workers. Files whose suffix is not an image
    format are ignored; an image that fails to decode fails the whole load, since training on
    a silently thinned data set is worse than not training. With ``roots``
    (:func:`farm.inputs.input_roots`), an image that links outside them fails it too.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"image folder not found: {root}")
    files = sorted(
        p
        for p in root.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in _IMAGE_SUFFIXES
    )
    if not files:
        kinds = ", ".join(sorted(_IMAGE_SUFFIXES))
        raise DatasetError(f"no images in {root} (looked for {kinds})")
    if roots is not None:
        for p in files:
            try:
                confine_input(roots, str(p))
            except OutsideInputRoots as e:
                raise DatasetError(str(e)) from None
    frames = [_ffmpeg_gray(p, size, max_frames=1)[:1] for p in files]
    return _to_tensor(np.concatenate(frames))


def load_video(path: str | Path, size: int, *, max_frames: int | None = None) -> torch.Tensor:
    """Decode every frame of a video (up to ``max_frames``) to ``(N, 1, size, size)`` float32
    in [0, 1]: grayscale, shorter side scaled to ``size``, centre-cropped."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    src = Path(path)
    if not src.is_file():
        raise DatasetError(f"video not found: {src}")
    if src.stat().st_size == 0:
        raise DatasetError(f"video is empty: {src}")
    return _to_tensor(_ffmpeg_gray(src, size, max_frames=max_frames))


@dataclass
class Dataset:
    """A resolved data set: ``data`` is images ``(N, 1, S, S)`` or clips ``(N, T, 1, S, S)``;
    ``labels`` ``(N,)`` exist only for labelled sets (digits)."""

    name: str
    data: torch.Tensor
    labels: torch.Tensor | None = None

    @property
    def is_sequences(self) -> bool:
        return self.data.ndim == 5


def load_dataset(
    name: str, size: int, *, seed: int = 0, roots: Sequence[Path] | None = None
) -> Dataset:
    """Resolve a data set name from a job spec.

    ``"digits"`` (labelled), ``"moving-digits"`` (256 clips of 16 frames on a ``size``
    canvas, digits at half the canvas; ``seed`` picks the clips), ``"images:<folder>"`` and
    ``"video:<file>"``. Anything else raises :class:`DatasetError`. The caller confines
    the folder or file to the roots a job may read from; ``roots`` confine each image too.
    """
    if name == "digits":
        x, y = load_digits_images(size)
        return Dataset(name, x, y)
    if name == "moving-digits":
        if size < 2:
            raise DatasetError(f"moving-digits needs size >= 2, got {size}")
        clips = moving_digits(256, 16, canvas=size, digit_size=size // 2, seed=seed)
        return Dataset(name, clips)
    kind, sep, rest = name.partition(":")
    if sep and rest and kind == "images":
        return Dataset(name, load_image_folder(rest, size, roots=roots))
    if sep and rest and kind == "video":
        return Dataset(name, load_video(rest, size))
    raise DatasetError(
        f"unknown data set {name!r}: expected 'digits', 'moving-digits', "
        "'images:<folder>' or 'video:<file>'"
    )
