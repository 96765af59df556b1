"""A class-conditional sketch-RNN decoder (``model: strokes``): Ha & Eck 2017, "A Neural
Representation of Sketch Drawings", without the encoder.

An LSTM reads the previous pen step in stroke-5 form ``(dx, dy, p_down, p_up, p_end)``, the
pen's absolute position in the glyph so far, and the embeddings of the character and of the
style (the font), which also set its initial state, and emits a mixture of ``M`` bivariate
Gaussians over the next offset plus a softmax over the three pen states (Graves 2013).
Sampling draws from that mixture with a temperature, every random number from one seeded CPU
generator, so a seed always writes the same glyph.

Why the style and the position: without a style the decoder mixed the fonts' different
constructions of one letter as it went (a glyph started as one font's and ended as
another's), and without the absolute position it had to integrate forty offsets to know
where a stroke should end, so the pen state stayed near its marginal entropy. A style row
of its own ("any style") is trained by dropping the style of some glyphs, for fonts the
model never saw (the held-out likelihood). Training adds uniform noise of one Hershey grid
cell to every point (dequantisation, Theis et al. 2016): the fonts' integer coordinates
otherwise let the mixture buy likelihood with spikes on the grid instead of shape. Each of
the three is worth 8-33 points of legibility; together with 2,400 steps the written
characters a reader of unseen fonts reads as asked went from 9% to 96% (docs/models.md).

The recurrence is ``torch.nn.LSTM`` (fused, about 3.6x the speed of a Python loop over a
layer-normalised cell on one CPU thread), so the ten-minute budget buys that many more steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workers.checkpoint import CheckpointError
from workers.datasets.strokes import StrokeSet
from workers.models.loop import EpochRun
from workers.models.vae import (
    TrainState,
)

# The default configuration trains in a few minutes on one busy CPU core (docs/models.md):
# sketch-RNN wants thousands of steps, so the width is halved to afford them.
DEFAULTS: dict[str, Any] = {
    "epochs": 300,
    "batch_size": 64,
    "lr": 3e-3,
    "hidden": 128,
    "mixtures": 10,
    "augment": 0.15,
    "lr_floor": 0.05,
    "style_dropout": 0.1,
    "dequantise": 1.0,
}


# The format of the checkpoints this module writes: 2 added the style and position inputs
# and replaced the layer-normalised cell by ``nn.LSTM``; older ones cannot be rebuilt.
FORMAT = 2


@dataclass
class StrokesConfig:
    """Architecture hyperparameters; stored in checkpoints so the model can be rebuilt."""

    # Characters (the data set's charset, in order).
    num_classes: int = 62
    # Styles (fonts) the decoder can be asked for, plus an "any style" row; 0: no style input.
    num_styles: int = 0
    # LSTM width; sketch-RNN's small public config uses 256, the farm's default job 128.
    hidden: int = 256
    # Gaussians in the offset mixture (sketch-RNN: 20; the farm's default job 10).
    mixtures: int = 20
    # Character embedding size.
    embed: int = 32
    # Style embedding size.
    style_embed: int = 16
    # Whether the pen's absolute position (the sum of the offsets so far) is an input.
    position: bool = True
    # The most steps a sample may take (Hershey's longest glyph has 124 points).
    max_len: int = 160
    format: int = FORMAT

    def __post_init__(self) -> None:
        if min(self.num_classes, self.hidden, self.mixtures, self.embed, self.max_len,
               self.style_embed) < 1 or self.num_styles < 0:  # fmt: skip
            raise ValueError(
                "num_classes, hidden, mixtures, embed, style_embed and max_len must be >= 1 "
                "and num_styles >= 0"
            )

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> StrokesConfig:
        """A stored config; one written before :data:`FORMAT` is refused by name, as its
        weights are another network's."""
        if int(config.get("format", 1)) != FORMAT:
            raise CheckpointError(
                f"a strokes checkpoint of format {config.get('format', 1)} (before the style "
                f"and position inputs); this worker reads format {FORMAT}: train it again"
            )
        return cls(**config)

    def to_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}

    @property
    def cond(self) -> int:
        """Width of the conditioning vector: the character's and the style's embeddings."""
        return self.embed + (self.style_embed if self.num_styles else 0)


@dataclass
class Mixture:
    """MDN outputs, each ``(..., M)`` or ``(..., M, 2)``, and ``pen`` logits ``(..., 3)``."""

    logit_pi: torch.Tensor
    mu: torch.Tensor
    log_sigma: torch.Tensor
    rho: torch.Tensor
    pen: torch.Tensor


# The recurrent state: the LSTM's ``(h, c)``, each ``(1, B, H)``, and the pen position ``(B, 2)``.
State = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class StrokeDecoder(nn.Module):
    """The decoder: ``forward(inputs (B, T, 5), labels (B,) or class weights (B, C), styles
    (B,) or None)``; style ``num_styles`` (and None) is "any style"."""

    def __init__(self, cfg: StrokesConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.num_classes, cfg.embed)
        self.style = nn.Embedding(cfg.num_styles + 1, cfg.style_embed) if cfg.num_styles else None
        self.init = nn.Linear(cfg.cond, 2 * cfg.hidden)
        self.lstm = nn.LSTM(5 + 2 * cfg.position + cfg.cond, cfg.hidden, batch_first=True)
        self.head = nn.Linear(cfg.hidden, 6 * cfg.mixtures + 3)

    def condition(self, labels: torch.Tensor, styles: torch.Tensor | None = None) -> torch.Tensor:
        """The conditioning ``(B, cond)``: embeddings of int labels, or the weighted mix for
        float weights, then the style's (None: any style)."""
        e = labels @ self.embed.weight if labels.is_floating_point() else self.embed(labels)
        if self.style is None:
            return e
        if styles is None:
            styles = torch.full((len(e),), self.cfg.num_styles, device=e.device)
        return torch.cat([e, self.style(styles)], dim=-1)

    def initial_state(self, e: torch.Tensor) -> State:
        h, c = torch.tanh(self.init(e)).chunk(2, dim=-1)  # (B, H) each
        return h[None].contiguous(), c[None].contiguous(), e.new_zeros(len(e), 2)

    def forward(
        self,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        styles: torch.Tensor | None = None,
        state: State | None = None,
    ) -> tuple[Mixture, State]:
        e = self.condition(labels, styles)  # (B, cond)
        if state is None:
            state = self.initial_state(e)
        h, c, at = state
        # the pen's position after each input row: where the glyph has got to
        pos = at[:, None, :] + inputs[..., :2].cumsum(dim=1)  # (B, T, 2)
        parts = [inputs, pos] if self.cfg.position else [inputs]
        x = torch.cat([*parts, e[:, None, :].expand(-1, inputs.shape[1], -1)], dim=-1)
        out, (h, c) = self.lstm(x, (h, c))  # (B, T, H)
        return self.mixture(self.head(out)), (h, c, pos[:, -1])  # (B, T, 6M + 3)

    def mixture(self, out: torch.Tensor) -> Mixture:
        m = self.cfg.mixtures
        pi, mu, log_sigma, rho, pen = out.split([m, 2 * m, 2 * m, m, 3], dim=-1)
        shape = (*out.shape[:-1], m, 2)
        return Mixture(pi, mu.reshape(shape), log_sigma.reshape(shape).clamp(-7.0, 4.0),
                       0.95 * torch.tanh(rho), pen)  # fmt: skip


def to_stroke5(strokes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Stroke-3 ``(N, L, 3)`` to stroke-5 targets ``(N, L + 1, 5)``: each glyph's rows, then
    one end row ``(0, 0, 0, 0, 1)``, then padding of end rows."""
    n, length, _ = strokes.shape
    out = torch.zeros(n, length + 1, 5)
    out[:, :length, :2] = strokes[..., :2]
    out[:, :length, 2] = 1 - strokes[..., 2]
    out[:, :length, 3] = strokes[..., 2]
    after = torch.arange(length + 1)[None, :] >= lengths[:, None]  # (N, L + 1)
    out[after] = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0])
    return out


START = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0])  # sketch-RNN's S0


def mixture_log_prob(mix: Mixture, xy: torch.Tensor) -> torch.Tensor:
    """Log density ``(...)`` of offsets ``xy`` ``(..., 2)`` under the mixture."""
    z = (xy[..., None, :] - mix.mu) / mix.log_sigma.exp()  # (..., M, 2)
    one = 1 - mix.rho**2
    q = (z[..., 0] ** 2 + z[..., 1] ** 2 - 2 * mix.rho * z[..., 0] * z[..., 1]) / one
    log_n = -q / 2 - mix.log_sigma.sum(-1) - 0.5 * torch.log(one) - math.log(2 * math.pi)
    return torch.logsumexp(F.log_softmax(mix.logit_pi, dim=-1) + log_n, dim=-1)


def stroke_loss(
    mix: Mixture, target: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(offset NLL, pen NLL)``, each per step of the real glyphs (nats): offsets over each
    glyph's rows, the pen over those rows and the end row."""
    steps = torch.arange(target.shape[1], device=target.device)[None, :]
    real = (steps < lengths[:, None]).float()
    with_end = (steps <= lengths[:, None]).float()
    offsets = -(mixture_log_prob(mix, target[..., :2]) * real).sum() / real.sum()
    pen = F.cross_entropy(mix.pen.transpose(1, 2), target[..., 2:].argmax(-1), reduction="none")
    return offsets, (pen * with_end).sum() / with_end.sum()


def sample_mixture(mix: Mixture, gen: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
    """Offsets ``(B, 2)`` drawn from a batch of mixtures (``(B, M)`` etc.): a component from
    ``softmax(logit_pi / t)``, then that Gaussian with its spreads scaled by ``sqrt(t)``."""
    t = max(temperature, 1e-4)
    k = torch.multinomial(F.softmax(mix.logit_pi / t, dim=-1), 1, generator=gen)[:, 0]
    rows = torch.arange(len(k))
    mu, sigma = mix.mu[rows, k], mix.log_sigma[rows, k].exp() * math.sqrt(t)  # (B, 2)
    rho = mix.rho[rows, k]
    e = torch.randn(len(k), 2, generator=gen)
    dx = mu[:, 0] + sigma[:, 0] * e[:, 0]
    dy = mu[:, 1] + sigma[:, 1] * (rho * e[:, 0] + torch.sqrt(1 - rho**2) * e[:, 1])
    return torch.stack([dx, dy], dim=-1)


def sample_pen(
    logits: torch.Tensor, gen: torch.Generator, temperature: float = 1.0
) -> torch.Tensor:
    """Pen states ``(B,)`` (0 down, 1 up, 2 end) from ``softmax(logits / t)``."""
    probs = F.softmax(logits / max(temperature, 1e-4), dim=-1)
    return torch.multinomial(probs, 1, generator=gen)[:, 0]


def sample(
    model: StrokeDecoder,
    label: int | torch.Tensor,
    seed: int,
    temperature: float = 0.4,
    pen_temperature: float = 0.5,
    style: int | None = None,
) -> np.ndarray:
    """One glyph as stroke-3 rows ``(L, 3)`` (normalised units), the same for a seed on one
    device. ``label`` is a class index or class weights ``(C,)``; ``style`` a style index
    (None: any style). sketch-RNN's usual temperatures are 0.1-0.5 (lower: neater, less
    varied). The pen state has its own temperature: sharpened like the offsets (0.1), the
    end state (one row in a glyph's forty) lost to "down" in the first model and glyphs ran
    to ``max_len`` in loops; at 1 the default model drops a closing stroke now and then
    (93.5% legible against 96.4% at 0.5, docs/models.md)."""
    gen = torch.Generator().manual_seed(seed)
    lab = (label.float()[None] if isinstance(label, torch.Tensor)
           else torch.tensor([int(label)]))  # fmt: skip
    sty = None if style is None else torch.tensor([int(style)])
    was_training = model.training
    model.eval()
    rows: list[list[float]] = []
    with torch.inference_mode():
        x, state = START.view(1, 1, 5), None
        for _ in range(model.cfg.max_len):
            mix, state = model(x, lab, sty, state)
            step = Mixture(mix.logit_pi[:, 0], mix.mu[:, 0], mix.log_sigma[:, 0],
                           mix.rho[:, 0], mix.pen[:, 0])  # fmt: skip
            xy = sample_mixture(step, gen, temperature)[0]
            pen = int(sample_pen(step.pen, gen, pen_temperature)[0])
            if pen == 2:
                break
            rows.append([float(xy[0]), float(xy[1]), float(pen)])
            x = torch.cat([xy, F.one_hot(torch.tensor(pen), 3).float()]).view(1, 1, 5)
    model.train(was_training)
    if rows:
        rows[-1][2] = 1.0  # the pen lifts at the end
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def trained_styles(strokes: StrokeSet) -> list[str]:
    """The fonts ``strokes`` holds, in the set's style order: the model's style indices."""
    present = set(strokes.styles.tolist())
    return [name for i, name in enumerate(strokes.style_names) if i in present]


def style_indices(strokes: StrokeSet) -> torch.Tensor:
    """Each glyph's style as an index into :func:`trained_styles` ``(N,)``."""
    names = trained_styles(strokes)
    return torch.tensor([names.index(strokes.style_names[s]) for s in strokes.styles.tolist()])


def _batches(lengths: torch.Tensor, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Batches of glyphs of similar length (random ties, random batch order): each batch is
    cut to its longest glyph, so short glyphs do not pay for the longest."""
    jitter = torch.rand(len(lengths), generator=gen)
    order = torch.argsort(lengths.float() + jitter)
    chunks = list(order.split(batch_size))
    return [chunks[i] for i in torch.randperm(len(chunks), generator=gen).tolist()]


def dequantise(tgt: torch.Tensor, lengths: torch.Tensor, cell: torch.Tensor,
               gen: torch.Generator) -> torch.Tensor:  # fmt: skip
    """``tgt`` ``(B, T, 5)`` with every real point moved by uniform noise within its grid
    cell ``cell`` ``(B,)`` (offsets get the difference of neighbouring points' noise, so the
    glyph does not drift)."""
    b, t, _ = tgt.shape
    real = (torch.arange(t)[None, :] < lengths[:, None]).float()[..., None]  # (B, T, 1)
    u = (torch.rand(b, t, 2, generator=gen) - 0.5) * cell[:, None, None] * real  # (B, T, 2)
    out = tgt.clone()
    out[..., :2] += u - F.pad(u, (0, 0, 1, 0))[:, :-1]
    return out


def train_strokes(
    strokes: StrokeSet,
    cfg: StrokesConfig,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume_state: TrainState | None = None,
    on_checkpoint: Callable[[TrainState], None] | None = None,
    augment: float = 0.15,
    clip: float = 1.0,
    lr_floor: float = 1.0,
    style_dropout: float = 0.1,
    dequantise_cells: float = 1.0,
) -> tuple[StrokeDecoder, list[dict[str, float]], TrainState]:
    """Teacher-forced training on ``strokes``; returns ``(model in eval mode, per-epoch
    history, state)``, resumable like the other trainers (batches, augmentation and
    shuffling all come from one CPU generator stored in the state). ``augment`` scales each
    glyph's x and y by independent factors in ``1 +- augment`` (sketch-RNN's random scale).
    The learning rate falls along a cosine from ``lr`` to ``lr_floor * lr`` over the epochs
    (:func:`workers.models.loop.cosine_lr`). With styles (``cfg.num_styles``, which must be
    the count of :func:`trained_styles`), a glyph's style is "any" with probability
    ``style_dropout``. ``dequantise_cells`` scales the noise of :func:`dequantise` (0: none)."""
    if epochs < 1 or batch_size < 1 or not math.isfinite(lr) or lr <= 0:
        raise ValueError("epochs and batch_size must be >= 1 and lr must be positive")
    if len(strokes.classes) != cfg.num_classes:
        raise ValueError(f"the set has {len(strokes.classes)} classes, cfg {cfg.num_classes}")
    fonts = trained_styles(strokes)
    if cfg.num_styles not in (0, len(fonts)):
        raise ValueError(f"the set has {len(fonts)} styles, cfg {cfg.num_styles}")
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = StrokeDecoder(cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.from_numpy(strokes.lengths)
    target = to_stroke5(torch.from_numpy(strokes.strokes), lengths)  # (N, L + 1, 5)
    labels = torch.from_numpy(strokes.labels)
    styles = style_indices(strokes)
    # one Hershey unit in the set's normalised units, per glyph
    cells = dequantise_cells / (torch.from_numpy(strokes.unit).float() * strokes.scale)
    n = len(lengths)
    run = EpochRun(
        "strokes",
        cfg.to_dict(),
        seed,
        model,
        opt,
        gen,
        resume_state,
        should_stop=should_stop,
        on_epoch=on_epoch,
        on_checkpoint=on_checkpoint,
    )
    for epoch in run.epochs(epochs, lr, lr_floor):
        sums = {"loss": 0.0, "offsets": 0.0, "pen": 0.0}
        for idx in _batches(lengths, batch_size, gen):
            run.check_stop(epoch)
            longest = int(lengths[idx].max()) + 1
            tgt = dequantise(target[idx, :longest], lengths[idx], cells[idx], gen)  # (B, T, 5)
            tgt[..., :2] *= 1 + augment * (2 * torch.rand(len(idx), 1, 2, generator=gen) - 1)
            inputs = torch.cat([START.expand(len(idx), 1, 5), tgt[:, :-1]], dim=1)
            sty = None
            if cfg.num_styles:
                drop = torch.rand(len(idx), generator=gen) < style_dropout
                sty = torch.where(drop, cfg.num_styles, styles[idx]).to(dev)
            mix, _ = model(inputs.to(dev), labels[idx].to(dev), sty)
            offsets, pen = stroke_loss(mix, tgt.to(dev), lengths[idx].to(dev))
            loss = offsets + pen
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            for k, v in (("loss", loss), ("offsets", offsets), ("pen", pen)):
                sums[k] += v.item() * len(idx)
        run.end_epoch(epoch, sums, n)
    state = run.finish(epochs)
    return model, run.history, state


def evaluate_nll(
    model: StrokeDecoder, strokes: StrokeSet, batch_size: int = 128, *,
    dequantised: bool = False, seed: int = 0,
) -> float:  # fmt: skip
    """Mean NLL per step (offsets + pen, nats) of ``strokes`` under ``model`` in "any style"
    (the set's fonts may be ones the model never saw), no augmentation; ``dequantised``
    spreads each point over its grid cell as training does (a density on the continuum,
    which the grid's spikes cannot flatter)."""
    lengths = torch.from_numpy(strokes.lengths)
    target = to_stroke5(torch.from_numpy(strokes.strokes), lengths)
    labels = torch.from_numpy(strokes.labels)
    cells = 1 / (torch.from_numpy(strokes.unit).float() * strokes.scale)
    gen = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    device = next(model.parameters()).device
    with torch.inference_mode():
        for idx in torch.arange(len(lengths)).split(batch_size):
            longest = int(lengths[idx].max()) + 1
            tgt = target[idx, :longest]
            if dequantised:
                tgt = dequantise(tgt, lengths[idx], cells[idx], gen)
            inputs = torch.cat([START.expand(len(idx), 1, 5), tgt[:, :-1]], dim=1)
            mix, _ = model(inputs.to(device), labels[idx].to(device))
            offsets, pen = stroke_loss(mix, tgt.to(device), lengths[idx].to(device))
            total += float(offsets + pen) * len(idx)
            count += len(idx)
    return total / count
