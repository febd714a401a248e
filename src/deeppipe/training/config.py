"""The ``train:`` section of an experiment spec.

Sub-sections whose valid keys depend on the chosen component (optimizer, schedule, loss)
keep their extra keys; the training engine checks them against the component's signature
and reports unknown ones with the spec path (``train.optimizer.<key>``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from deeppipe.config import Component, Strict
from deeppipe.training.denoise import DenoiseConfig


class ParamGroupConfig(BaseModel):
    """Parameters whose names match ``match`` (glob patterns) get their own optimizer settings."""

    model_config = ConfigDict(extra="allow")
    match: str | list[str]
    lr: float | None = Field(None, gt=0)
    weight_decay: float | None = Field(None, ge=0)

    def patterns(self) -> list[str]:
        return [self.match] if isinstance(self.match, str) else list(self.match)

    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class OptimizerConfig(Component):
    name: str = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    # Weight decay (coupled or decoupled) skips biases and norm-layer parameters unless this is true.
    decay_bias_and_norm: bool = False
    param_groups: list[ParamGroupConfig] = Field(default_factory=list)


class ScheduleConfig(Component):
    name: str
    interval: Literal["auto", "step", "epoch"] = "auto"
    warmup_epochs: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    warmup_start_factor: float = Field(0.0, ge=0, le=1)
    monitor: str = "val/loss"  # reduce-on-plateau only
    mode: Literal["auto", "min", "max"] = "auto"


class LossConfig(Component):
    name: str


class EarlyStoppingConfig(Strict):
    monitor: str = "val/loss"
    mode: Literal["auto", "min", "max"] = "auto"
    patience: PositiveInt = 5
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = True


class ElasticNetConfig(Strict):
    """scikit-learn's convention: alpha * (l1_ratio * |w|_1 + (1 - l1_ratio) / 2 * |w|_2^2)."""

    alpha: float = Field(..., ge=0)
    l1_ratio: float = Field(0.5, ge=0, le=1)


class SoftSharingConfig(Strict):
    """Soft parameter sharing: ``weight * ||theta_a - theta_b||^2`` over every parameter (weights
    and biases) of two sub-networks of the same shape, named by their layer (node) names."""

    a: str
    b: str
    weight: float = Field(..., gt=0)


class RegularizationConfig(Strict):
    """Penalties on weights only (never biases, norm-layer or activation parameters).

    ``l1_mode: proximal`` (the default) applies the L1 part (``l1`` and the elastic net's) as a
    soft-thresholding step after every optimiser step, which sets weights exactly to zero;
    ``subgradient`` adds ``l1 * sum |w|`` to the loss instead (weights only hover near zero)."""

    l1: float = Field(0.0, ge=0)  # l1 * sum |w|
    l2: float = Field(0.0, ge=0)  # l2 / 2 * sum w^2 (gradient l2 * w: SGD weight decay)
    elastic_net: ElasticNetConfig | None = None
    l1_mode: Literal["proximal", "subgradient"] = "proximal"
    soft_sharing: list[SoftSharingConfig] = Field(default_factory=list)


class ClipConfig(Strict):
    value: float | None = Field(None, gt=0)  # clamp every gradient component to [-value, value]
    norm: float | None = Field(None, gt=0)  # rescale so the norm is <= norm
    norm_type: float = Field(2.0, gt=0)
    per_parameter: bool = False  # norm of each parameter tensor instead of the global norm


class MixConfig(Strict):
    alpha: float = Field(1.0, gt=0)
    prob: float = Field(1.0, ge=0, le=1)  # share of batches that are mixed


class CheckpointConfig(Strict):
    every: PositiveInt = 1  # epochs between checkpoints (one is always written at the end)
    resume: bool = True
    on_mismatch: Literal["error", "restart"] = "error"


class EmaConfig(Strict):
    """Exponential moving average of the weights (training/ema.py): evaluation and the saved
    model use the average. ``warmup``: decay min(decay, (1 + t) / (10 + t)) at update t."""

    decay: float = Field(0.999, gt=0, lt=1)
    warmup: bool = True
    every: PositiveInt = 1  # optimizer steps between updates


class DistributedConfig(Strict):
    nproc_per_node: PositiveInt = 1
    backend: Literal["auto", "gloo", "nccl"] = "auto"


class TrainConfig(Strict):
    epochs: PositiveInt = 10
    batch_size: PositiveInt = 64
    eval_batch_size: PositiveInt = 1024
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig | None = None
    loss: LossConfig | None = None  # None: chosen from the task (cross_entropy / bce / mse)
    early_stopping: EarlyStoppingConfig | None = None
    device: str = "auto"
    deterministic: bool = False
    progress: bool = True
    # --- engine options (issue 4) ---
    freeze: list[str] = Field(default_factory=list)  # glob patterns of parameter/module names
    regularization: RegularizationConfig | None = None
    clip: ClipConfig | None = None
    mixup: MixConfig | None = None
    cutmix: MixConfig | None = None
    grad_accumulation: PositiveInt = 1
    # auto: bf16 autocast, channels_last (2-D convolutions) and torch.compile on CUDA, none of them
    # on the CPU (training.engine says why); any explicit value wins
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: Literal["auto"] | bool = "auto"
    # true, or torch.compile's keyword arguments: {mode: max-autotune, backend: inductor, dynamic: true}
    compile: Literal["auto"] | bool | dict[str, Any] = "auto"
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    distributed: DistributedConfig | None = None
    ema: EmaConfig | None = None  # {decay: 0.999}: evaluate and save the averaged weights
    log_every: PositiveInt = 25  # steps between progress-bar refreshes and gradient-norm samples
    denoise: DenoiseConfig | None = None  # corrupted inputs, clean targets (training.denoise)

    @field_validator("freeze", mode="before")
    @classmethod
    def _one_pattern(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v
