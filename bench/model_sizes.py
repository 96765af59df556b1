"""Parameters and training time of the default VAE and GAN at each image size.

The per-size defaults in farm/families.py (VAE_SIZES, GAN_SIZES) were chosen with this: each
default run must finish in at most 10 minutes on 2 CPU cores. A VAE epoch is timed over
``--batches`` real training steps (forward, backward, Adam) on random data of the set's
size and extrapolated to ``--samples`` images (1,800: the digits, or a 62-character charset
over the ~30 training fonts); the GAN is timed over ``--batches`` steps and multiplied by
its default step count. The data's values do not change the time of a dense model.

On a shared machine every figure is inflated by the other jobs; read them against the 16 px
rows, whose default runs take 47 s (VAE) and 151 s (cGAN) alone on 1 thread
(docs/models.md): the ratio to those is the machine's contention, and divides the rest.
One torch thread is the default, since two spin against other jobs on a shared box.

    python bench/model_sizes.py                       # 16 32 64 128 on this machine's CPU
    python bench/model_sizes.py --sizes 256 --device cuda
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from farm.families import GAN_DEFAULTS, GAN_SIZES, VAE_DEFAULTS, VAE_SIZES
from workers.models.gan import Discriminator, GANConfig, Generator
from workers.models.vae import ConvVAE, VAEConfig, vae_loss


def params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def vae_step_s(cfg: VAEConfig, batch: int, batches: int, dev: torch.device) -> float:
    model = ConvVAE(cfg).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=VAE_DEFAULTS["lr"])
    x = torch.rand(batch, cfg.image_channels, cfg.image_size, cfg.image_size, device=dev)
    y = torch.randint(0, max(cfg.num_classes, 1), (batch,), device=dev)
    labels = y if cfg.num_classes else None

    def step() -> None:
        logits, mu, logvar = model(x, labels)
        loss = vae_loss(logits, x, mu, logvar, cfg.target)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up: allocator, kernels
    sync(dev)
    start = time.perf_counter()
    for _ in range(batches):
        step()
    sync(dev)
    return (time.perf_counter() - start) / batches


def gan_step_s(cfg: GANConfig, batch: int, batches: int, dev: torch.device) -> float:
    g, d = Generator(cfg).to(dev).train(), Discriminator(cfg).to(dev).train()
    opt_g = torch.optim.Adam(g.parameters(), lr=GAN_DEFAULTS["lr"], betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), lr=GAN_DEFAULTS["d_lr"], betas=(0.0, 0.9))
    real = torch.rand(batch, cfg.image_channels, cfg.image_size, cfg.image_size, device=dev)
    y = torch.randint(0, max(cfg.num_classes, 1), (batch,), device=dev)
    labels = y if cfg.num_classes else None

    def step() -> None:
        fake = g(torch.randn(batch, cfg.latent_dim, device=dev), labels)
        loss_d = F.relu(1 - d(real, labels)).mean() + F.relu(1 + d(fake.detach(), labels)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = -d(fake, labels).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    step()
    sync(dev)
    start = time.perf_counter()
    for _ in range(batches):
        step()
    sync(dev)
    return (time.perf_counter() - start) / batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--channels", type=int, default=1, help="image channels: 1, 3 or 4")
    ap.add_argument("--classes", type=int, default=10, help="0 for unconditional models")
    ap.add_argument("--samples", type=int, default=1800, help="training images per epoch")
    ap.add_argument("--batches", type=int, default=8, help="timed steps per measurement")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    print(f"device {dev}, {torch.get_num_threads()} threads, {args.channels} channels, "
          f"{args.classes} classes, {args.samples} images per VAE epoch")  # fmt: skip
    head = f"{'size':>5} {'family':>6} {'params':>10} {'s/epoch':>8} {'s/100 steps':>11}"
    print(head + f" {'length':>12} {'default run':>12}")
    for size in args.sizes:
        v = VAE_SIZES[size]
        vcfg = VAEConfig(image_size=size, latent_dim=v["latent_dim"], channels=v["width"],
                         num_classes=args.classes, image_channels=args.channels)  # fmt: skip
        step = vae_step_s(vcfg, v["batch_size"], args.batches, dev)
        epoch = step * -(-args.samples // v["batch_size"])
        print(f"{size:>5} {'vae':>6} {params(ConvVAE(vcfg)):>10,} {epoch:>8.2f} {'':>11} "
              f"{v['epochs']:>5} epochs {epoch * v['epochs'] / 60:>9.1f} min")  # fmt: skip
        gsz = GAN_SIZES[size]
        gcfg = GANConfig(image_size=size, latent_dim=gsz["latent_dim"], channels=gsz["width"],
                         d_channels=gsz["width"], num_classes=args.classes,
                         image_channels=args.channels)  # fmt: skip
        gstep = gan_step_s(gcfg, gsz["batch_size"], args.batches, dev)
        total = params(Generator(gcfg)) + params(Discriminator(gcfg))
        print(f"{size:>5} {'gan':>6} {total:>10,} {'':>8} {gstep * 100:>11.2f} "
              f"{gsz['steps']:>6} steps {gstep * gsz['steps'] / 60:>9.1f} min")  # fmt: skip


if __name__ == "__main__":
    main()
