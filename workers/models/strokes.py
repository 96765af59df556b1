"""A class-conditional sketch-RNN decoder (``model: strokes``): Ha & Eck 2017, "A Neural
Representation of Sketch Drawings", without the encoder.

An LSTM with layer normalisation (what the sketch-RNN README recommends for sets under 10k
drawings; Hershey has about a thousand Latin glyphs) reads the previous pen step in stroke-5
form ``(dx, dy, p_down, p_up, p_end)`` and the character's embedding, which also sets its
initial state, and emits a mixture of ``M`` bivariate Gaussians over the next offset plus a
softmax over the three pen states (Graves 2013). Sampling draws from that mixture with a
temperature, every random number from one seeded CPU generator, so a seed always writes the
same glyph.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workers.datasets.strokes import StrokeSet
from workers.models.loop import EpochRun
from workers.models.vae import (
    TrainState,
)

# The default configuration trains in about ten minutes on one busy CPU core (docs/models.md):
# sketch-RNN wants thousands of steps, so the width is halved to afford them.
DEFAULTS: dict[str, Any] = {
    "epochs": 60,
    "batch_size": 64,
    "lr": 3e-3,
    "hidden": 128,
    "mixtures": 10,
    "augment": 0.15,
    "lr_floor": 0.05,
}


@dataclass
class StrokesConfig:
    """Architecture hyperparameters; stored in checkpoints so the model can be rebuilt."""

    # Characters (the data set's charset, in order).
    num_classes: int = 62
    # LSTM width; sketch-RNN's small public config uses 256, the farm's default job 128.
    hidden: int = 256
    # Gaussians in the offset mixture (sketch-RNN: 20; the farm's default job 10).
    mixtures: int = 20
    # Character embedding size.
    embed: int = 32
    # The most steps a sample may take (Hershey's longest glyph has 124 points).
    max_len: int = 160

    def __post_init__(self) -> None:
        if min(self.num_classes, self.hidden, self.mixtures, self.embed, self.max_len) < 1:
            raise ValueError("num_classes, hidden, mixtures, embed and max_len must be >= 1")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class LayerNormLSTMCell(nn.Module):
    """LSTM cell with layer normalisation of the input and recurrent gate pre-activations
    and of the cell state (Ba et al. 2016), as in sketch-RNN's ``LayerNormLSTMCell``.

    The input half is applied to a whole sequence at once (:meth:`project`); only the
    recurrent half runs per step.
    """

    def __init__(self, inputs: int, hidden: int) -> None:
        super().__init__()
        self.ih = nn.Linear(inputs, 4 * hidden, bias=False)
        self.hh = nn.Linear(hidden, 4 * hidden, bias=False)
        self.ln_ih = nn.LayerNorm(4 * hidden)
        self.ln_hh = nn.LayerNorm(4 * hidden)
        self.ln_c = nn.LayerNorm(hidden)
        with torch.no_grad():  # forget gate biased open, the usual LSTM initialisation
            self.ln_hh.bias[hidden : 2 * hidden].fill_(1.0)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln_ih(self.ih(x))

    def step(
        self, projected: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        i, f, g, o = (projected + self.ln_hh(self.hh(h))).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(self.ln_c(c)), c


@dataclass
class Mixture:
    """MDN outputs, each ``(..., M)`` or ``(..., M, 2)``, and ``pen`` logits ``(..., 3)``."""

    logit_pi: torch.Tensor
    mu: torch.Tensor
    log_sigma: torch.Tensor
    rho: torch.Tensor
    pen: torch.Tensor


class StrokeDecoder(nn.Module):
    """The decoder: ``forward(inputs (B, T, 5), labels (B,) or class weights (B, C))``."""

    def __init__(self, cfg: StrokesConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.num_classes, cfg.embed)
        self.init = nn.Linear(cfg.embed, 2 * cfg.hidden)
        self.cell = LayerNormLSTMCell(5 + cfg.embed, cfg.hidden)
        self.head = nn.Linear(cfg.hidden, 6 * cfg.mixtures + 3)

    def condition(self, labels: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, E)`` of int labels, or the weighted mix for float weights."""
        if labels.is_floating_point():
            return labels @ self.embed.weight
        return self.embed(labels)

    def initial_state(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = torch.tanh(self.init(e)).chunk(2, dim=-1)
        return h.contiguous(), c.contiguous()

    def forward(
        self,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[Mixture, tuple[torch.Tensor, torch.Tensor]]:
        e = self.condition(labels)  # (B, E)
        if state is None:
            state = self.initial_state(e)
        x = torch.cat([inputs, e[:, None, :].expand(-1, inputs.shape[1], -1)], dim=-1)
        projected = self.cell.project(x)  # (B, T, 4H)
        hs = []
        for t in range(inputs.shape[1]):
            state = self.cell.step(projected[:, t], state)
            hs.append(state[0])
        return self.mixture(self.head(torch.stack(hs, dim=1))), state  # (B, T, 6M + 3)

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
    pen_temperature: float = 1.0,
) -> np.ndarray:
    """One glyph as stroke-3 rows ``(L, 3)`` (normalised units), the same for a seed on one
    device. ``label`` is a class index or class weights ``(C,)``; sketch-RNN's usual
    temperatures are 0.1-0.5 (lower: neater, less varied). The pen state has its own
    temperature: sharpened like the offsets, the end state (one row in a glyph's forty)
    never wins, and every glyph runs to ``max_len`` in loops."""
    gen = torch.Generator().manual_seed(seed)
    lab = (label.float()[None] if isinstance(label, torch.Tensor)
           else torch.tensor([int(label)]))  # fmt: skip
    was_training = model.training
    model.eval()
    rows: list[list[float]] = []
    with torch.inference_mode():
        x, state = START.view(1, 1, 5), None
        for _ in range(model.cfg.max_len):
            mix, state = model(x, lab, state)
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


def _batches(lengths: torch.Tensor, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Batches of glyphs of similar length (random ties, random batch order): each batch is
    cut to its longest glyph, so short glyphs do not pay for the longest."""
    jitter = torch.rand(len(lengths), generator=gen)
    order = torch.argsort(lengths.float() + jitter)
    chunks = list(order.split(batch_size))
    return [chunks[i] for i in torch.randperm(len(chunks), generator=gen).tolist()]


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
) -> tuple[StrokeDecoder, list[dict[str, float]], TrainState]:
    """Teacher-forced training on ``strokes``; returns ``(model in eval mode, per-epoch
    history, state)``, resumable like the other trainers (batches, augmentation and
    shuffling all come from one CPU generator stored in the state). ``augment`` scales each
    glyph's x and y by independent factors in ``1 +- augment`` (sketch-RNN's random scale).
    The learning rate falls along a cosine from ``lr`` to ``lr_floor * lr`` over the epochs
    (:func:`workers.models.loop.cosine_lr`)."""
    if epochs < 1 or batch_size < 1 or not math.isfinite(lr) or lr <= 0:
        raise ValueError("epochs and batch_size must be >= 1 and lr must be positive")
    if len(strokes.classes) != cfg.num_classes:
        raise ValueError(f"the set has {len(strokes.classes)} classes, cfg {cfg.num_classes}")
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = StrokeDecoder(cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.from_numpy(strokes.lengths)
    target = to_stroke5(torch.from_numpy(strokes.strokes), lengths)  # (N, L + 1, 5)
    labels = torch.from_numpy(strokes.labels)
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
            tgt = target[idx, :longest].clone()  # (B, T, 5)
            tgt[..., :2] *= 1 + augment * (2 * torch.rand(len(idx), 1, 2, generator=gen) - 1)
            inputs = torch.cat([START.expand(len(idx), 1, 5), tgt[:, :-1]], dim=1)
            mix, _ = model(inputs.to(dev), labels[idx].to(dev))
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


def evaluate_nll(model: StrokeDecoder, strokes: StrokeSet, batch_size: int = 128) -> float:
    """Mean NLL per step (offsets + pen, nats) of ``strokes`` under ``model``, no augmentation."""
    lengths = torch.from_numpy(strokes.lengths)
    target = to_stroke5(torch.from_numpy(strokes.strokes), lengths)
    labels = torch.from_numpy(strokes.labels)
    total, count = 0.0, 0
    device = next(model.parameters()).device
    with torch.inference_mode():
        for idx in torch.arange(len(lengths)).split(batch_size):
            longest = int(lengths[idx].max()) + 1
            tgt = target[idx, :longest]
            inputs = torch.cat([START.expand(len(idx), 1, 5), tgt[:, :-1]], dim=1)
            mix, _ = model(inputs.to(device), labels[idx].to(device))
            offsets, pen = stroke_loss(mix, tgt.to(device), lengths[idx].to(device))
            total += float(offsets + pen) * len(idx)
            count += len(idx)
    return total / count
