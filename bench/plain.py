"""The twenty-line loop a researcher would write by hand, with the template's networks.

Same networks and initialisation (built from the same config), same optimizers, batch size
and noise prior; the data is held as one float tensor and batches are sliced from a fresh
permutation each epoch.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig

from gan.data import load_split
from gan.data.images import output_range


def build_networks(cfg: DictConfig):
    """G, D and the noise prior of ``cfg.model``, initialised as the template initialises them."""
    torch.manual_seed(cfg.seed)
    return instantiate(cfg.model.generator), instantiate(cfg.model.discriminator), instantiate(cfg.model.noise)


def run_plain(cfg: DictConfig, iterations: int, warmup: int) -> float:
    """Train ``warmup + iterations`` GAN iterations; return iterations per second after warm-up."""
    G, D, noise = build_networks(cfg)
    opt_g = instantiate(cfg.model.optimizer_g)(G.parameters())
    opt_d = instantiate(cfg.model.optimizer_d)(D.parameters())
    images, _ = load_split(cfg.data.root, "train", download=False)
    low, high = output_range(G.output_activation)
    data = images.unsqueeze(1).float().div_(255).mul_(high - low).add_(low)
    b = cfg.data.batch_size
    per_epoch = len(data) // b
    perm = torch.randperm(len(data))
    start = None
    for i in range(warmup + iterations):
        if i == warmup:
            start = time.perf_counter()
        if i % per_epoch == 0 and i > 0:
            perm = torch.randperm(len(data))
        real = data[perm[(i % per_epoch) * b : (i % per_epoch + 1) * b]]

        # Train Discriminator
        fake = G(noise.sample(b))
        real_logits, fake_logits = D(real), D(fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + \
            F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()

        # Train Generator
        g_logits = D(G(noise.sample(b)))
        g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    return iterations / (time.perf_counter() - start)
