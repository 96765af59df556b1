"""The 16 px models exactly as main built them before the stages (commit aba214c), frozen
here so a test can save a checkpoint "from the old code" and load it with the new."""

from __future__ import annotations

import torch
from torch import nn

from workers.models.vae import class_condition


class LegacyVAE(nn.Module):
    """main's ConvVAE: two stride-2 convs to S/4 at any size, grey, pixels."""

    def __init__(self, image_size: int, latent_dim: int, channels: int, num_classes: int = 0,
                 class_embed_dim: int = 8) -> None:  # fmt: skip
        super().__init__()
        c, self.c, self.low, self.num_classes = channels, channels, image_size // 4, num_classes
        flat = 2 * c * self.low * self.low
        cond = class_embed_dim if num_classes > 0 else 0
        self.class_embed = nn.Embedding(num_classes, cond) if cond else None
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(flat + cond, 256), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.fc_mu = nn.Linear(256, latent_dim)
        self.fc_logvar = nn.Linear(256, latent_dim)
        self.decoder_fc = nn.Sequential(
            nn.Linear(latent_dim + cond, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, flat), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.decoder_conv = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),
        )  # fmt: skip

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = z
        if self.class_embed is not None:
            assert labels is not None
            h = torch.cat([z, class_condition(self.class_embed, labels, self.num_classes)], 1)
        h = self.decoder_fc(h).view(-1, 2 * self.c, self.low, self.low)  # (B, 2C, S/4, S/4)
        return torch.sigmoid(self.decoder_conv(h))  # (B, 1, S, S)


class LegacyGenerator(nn.Module):
    """main's Generator: linear to (4C, S/4, S/4), two upsampling blocks, grey."""

    def __init__(self, image_size: int, latent_dim: int, num_classes: int, channels: int,
                 embed_dim: int) -> None:  # fmt: skip
        super().__init__()
        c, self.c, self.low, self.num_classes = channels, channels, image_size // 4, num_classes
        cond = embed_dim if num_classes > 0 else 0
        self.embed = nn.Embedding(num_classes, cond) if cond else None
        n = 4 * c * self.low * self.low
        self.fc = nn.Sequential(nn.Linear(latent_dim + cond, n), nn.BatchNorm1d(n), nn.ReLU())
        self.blocks = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(4 * c, 2 * c, 3, padding=1),
            nn.BatchNorm2d(2 * c), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * c, c, 3, padding=1),
            nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, 1, 3, padding=1),
        )  # fmt: skip

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = z
        if self.embed is not None:
            assert labels is not None
            h = torch.cat([z, class_condition(self.embed, labels, self.num_classes)], 1)
        h = self.fc(h).view(-1, 4 * self.c, self.low, self.low)  # (B, 4C, S/4, S/4)
        return torch.sigmoid(self.blocks(h))  # (B, 1, S, S)
