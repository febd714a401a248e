"""Mixup and CutMix: batch-level augmentation inside the training step.

The loss is mixed, lam * L(out, y_a) + (1 - lam) * L(out, y_b), which works for any loss
(equal to mixing one-hot targets for cross-entropy). Randomness comes from a generator
seeded by (seed, epoch), so a resumed run mixes exactly as an uninterrupted one.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from deeppipe.training.config import MixConfig


class Mixer:
    """Chooses mixup or cutmix per batch (half and half when both are configured)."""

    def __init__(self, mixup: MixConfig | None, cutmix: MixConfig | None, seed: int) -> None:
        self.mixup, self.cutmix, self.seed = mixup, cutmix, seed
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(seed)

    @property
    def active(self) -> bool:
        return self.mixup is not None or self.cutmix is not None

    def start_epoch(self, epoch: int) -> None:
        self.rng = np.random.default_rng([self.seed, epoch, 7])
        self.gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch + 17)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, float]:
        """Mixed inputs, the permutation giving the second target, and lam (weight of the first)."""
        choices = [c for c in (("mixup", self.mixup), ("cutmix", self.cutmix)) if c[1] is not None]
        kind, cfg = choices[int(self.rng.integers(len(choices)))]
        if cfg.prob < 1.0 and self.rng.random() >= cfg.prob:
            return x, None, 1.0
        lam = float(self.rng.beta(cfg.alpha, cfg.alpha))
        perm = torch.randperm(x.shape[0], generator=self.gen).to(x.device)
        if kind == "mixup":
            return x.lerp(x.index_select(0, perm), 1.0 - lam), perm, lam
        return cutmix(x, perm, lam, self.rng)


def cutmix(
    x: torch.Tensor, perm: torch.Tensor, lam: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Paste a box of area (1 - lam) from the permuted batch; lam is corrected for clipping."""
    if x.dim() < 3:
        raise ValueError("cutmix needs spatial inputs (N, C, H, W) or (N, C, L)")
    h, w = (x.shape[-2], x.shape[-1]) if x.dim() >= 4 else (1, x.shape[-1])
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    if x.dim() < 4:
        y0, y1 = 0, 1
    out = x.clone()
    if x.dim() >= 4:
        out[..., y0:y1, x0:x1] = x.index_select(0, perm)[..., y0:y1, x0:x1]
    else:
        out[..., x0:x1] = x.index_select(0, perm)[..., x0:x1]
    lam = 1.0 - ((y1 - y0) * (x1 - x0)) / float(h * w)
    return out, perm, lam
