"""Denoising autoencoders (``train.denoise``): the training inputs are corrupted, the targets stay clean.

An autoencoder's targets are its inputs; corrupting a batch before the trainer sees it would corrupt
both. ``Denoising`` wraps the training batches and yields ``(corrupted x, clean x)``: the trainer
takes targets of the inputs' shape as they come, so the network learns to undo the noise. The noise
is drawn in the inputs' own units (before the network standardises them), from a generator seeded
by ``(seed, epoch)``, so a resumed run sees the same corruption. Validation and test inputs are
never corrupted: the scores are those of clean reconstructions.

- ``gaussian: s``: add N(0, s^2) to every input value;
- ``masking: p``: set a random share p of the values to 0 (masking noise, Vincent et al. 2008);
- ``salt_pepper: p``: set a share p of the values to the inputs' minimum or maximum, half each.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from pydantic import Field, model_validator

from deeppipe.config import Strict
from deeppipe.errors import SpecError

PATH = "train.denoise"


class DenoiseConfig(Strict):
    """The corruption of a denoising autoencoder's training inputs (any of the three, applied in order)."""

    gaussian: float | None = Field(None, gt=0, description="std of additive Gaussian noise (inputs' units)")
    masking: float | None = Field(None, gt=0, lt=1, description="share of input values set to 0")
    salt_pepper: float | None = Field(None, gt=0, lt=1, description="share of values set to the min or max")

    @model_validator(mode="after")
    def _some(self) -> DenoiseConfig:
        if self.gaussian is None and self.masking is None and self.salt_pepper is None:
            raise ValueError("give at least one of gaussian, masking, salt_pepper")
        return self


def corrupt(x: torch.Tensor, cfg: DenoiseConfig, generator: torch.Generator) -> torch.Tensor:
    """A corrupted copy of the batch ``x`` (``x`` itself is never changed)."""
    x = x.float()
    out = x.clone()
    if cfg.gaussian is not None:
        out += torch.randn(x.shape, generator=generator, device=x.device) * cfg.gaussian
    if cfg.masking is not None:
        out[torch.rand(x.shape, generator=generator, device=x.device) < cfg.masking] = 0.0
    if cfg.salt_pepper is not None:
        u = torch.rand(x.shape, generator=generator, device=x.device)
        lo, hi = x.min(), x.max()
        out = torch.where(u < cfg.salt_pepper / 2, lo, torch.where(u < cfg.salt_pepper, hi, out))
    return out


class Denoising:
    """Training batches ``(corrupt(x), x)`` from a reconstruction task's ``(x, labels)`` batches."""

    def __init__(self, source: Any, cfg: DenoiseConfig, seed: int = 0) -> None:
        self.source, self.cfg, self.seed = source, cfg, int(seed)
        self.batch_size = source.batch_size
        self.num_samples = source.num_samples

    def __len__(self) -> int:
        return len(self.source)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator: torch.Generator | None = None
        for xb, _ in self.source.epoch(epoch):
            if generator is None or generator.device != xb.device:
                generator = torch.Generator(device=xb.device)
                generator.manual_seed(self.seed * 1_000_003 + epoch)
            yield corrupt(xb, self.cfg, generator), xb


def wrap(source: Any, cfg: DenoiseConfig | None, seed: int) -> Any:
    """The training source, denoising when ``train.denoise`` is set."""
    return source if cfg is None else Denoising(source, cfg, seed)


def check_denoise(cfg: DenoiseConfig | None, task_kind: str, *, file: str | None = None) -> None:
    """Validation: corrupting inputs against clean targets needs targets that are the inputs."""
    if cfg is not None and task_kind != "reconstruction":
        raise SpecError("denoising corrupts the inputs against clean copies of them: it needs an autoencoder",
                        path=PATH, file=file, expected="data.task: reconstruction (or no train.denoise)",
                        found=f"task {task_kind!r}")
