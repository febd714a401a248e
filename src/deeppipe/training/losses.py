"""The loss registry: every loss a spec can name, plus ``@register_loss`` for custom ones.

Each entry is a factory: ``factory(**spec_kwargs) -> loss_fn(outputs, targets) -> scalar``.
Factories take the spec's keyword arguments, so an unknown key is reported with its path
(``train.loss.<key>``). Targets are reshaped to the outputs' shape where the element counts
agree (binary: logits (N, 1) vs targets (N,)), so the shape bug behind silently wrong
broadcasting can't happen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from deeppipe.config import Component
from deeppipe.errors import SpecError, join_path
from deeppipe.registry import LOSSES
from deeppipe.training.config import LossConfig, TrainConfig

if TYPE_CHECKING:  # deeppipe.data imports scikit-learn (1 s): keep worker start-up lean
    from deeppipe.data.task import Task

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
register_loss = LOSSES.register
REAL = ("regression", "reconstruction", "binary")  # element-wise losses: outputs shaped like targets


def _like(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Targets as float in the outputs' shape: (N,) -> (N, 1) for one-output heads."""
    if y.shape != out.shape and y.numel() == out.numel():
        y = y.reshape(out.shape)
    return y.to(out.dtype) if y.dtype != out.dtype else y


def _flat_logits(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Class scores (N, C) and int64 targets (N,); batch-first sequence outputs (N, T, C)
    with per-step targets (N, T) (tagging) are flattened to (N*T, C) and (N*T,)."""
    if out.dim() >= 3 and y.shape == out.shape[:-1]:
        out, y = out.reshape(-1, out.shape[-1]), y.reshape(-1)
    return out, y.long() if y.dtype != torch.long else y


def _weights(values: Sequence[float] | None) -> torch.Tensor | None:
    return None if values is None else torch.as_tensor(list(values), dtype=torch.float32)


@register_loss("mse", aliases=("mean_squared_error", "l2"), tasks=REAL)
def mse() -> LossFn:
    """Mean squared error: (1/n) sum (y - yhat)^2."""
    return lambda out, y: F.mse_loss(out.float(), _like(out, y).float())


@register_loss("mae", aliases=("l1", "mean_absolute_error"), tasks=REAL)
def mae() -> LossFn:
    """Mean absolute error: (1/n) sum |y - yhat|."""
    return lambda out, y: F.l1_loss(out.float(), _like(out, y).float())


@register_loss("huber", tasks=REAL)
def huber(delta: float = 1.0) -> LossFn:
    """Huber: 0.5 e^2 where |e| <= delta, delta (|e| - 0.5 delta) beyond."""
    return lambda out, y: F.huber_loss(out.float(), _like(out, y).float(), delta=delta)


@register_loss("bce_with_logits", aliases=("bce", "binary_cross_entropy", "log_loss"), tasks=("binary",),
               applies="sigmoid")
def bce_with_logits(pos_weight: float | None = None) -> LossFn:
    """Binary cross-entropy on logits (sigmoid folded in, numerically stable)."""
    pw = None if pos_weight is None else torch.tensor([float(pos_weight)])

    def fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        w = None if pw is None else pw.to(out.device)
        return F.binary_cross_entropy_with_logits(out.float(), _like(out, y).float(), pos_weight=w)

    return fn


@register_loss("perceptron", aliases=("perceptron_criterion",), tasks=("binary",))
def perceptron() -> LossFn:
    """The perceptron criterion max(0, -y f(x)) on one linear output, labels y = +-1 (deeppipe's
    binary labels 0/1 are read as -1/+1); predictions are the sign of f(x). Where y f(x) = 0 the
    gradient is taken from the mistake side (-y x), as Rosenblatt's rule updates on y f(x) <= 0,
    so a network starting at f = 0 still learns."""

    def fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        margin = (2.0 * _like(out, y).float() - 1.0) * out.float()
        return torch.where(margin <= 0, -margin, torch.zeros_like(margin)).mean()

    return fn


class _Weighted:
    """A loss holding class weights; moves them to the outputs' device once."""

    def __init__(self, weights: Sequence[float] | None) -> None:
        self.w = _weights(weights)

    def weight(self, out: torch.Tensor) -> torch.Tensor | None:
        if self.w is not None and self.w.device != out.device:
            self.w = self.w.to(out.device)
        return self.w


@register_loss("cross_entropy", aliases=("ce", "categorical_cross_entropy", "softmax"), tasks=("multiclass",),
               applies="softmax")
def cross_entropy(
    label_smoothing: float = 0.0,
    class_weights: Sequence[float] | None = None,
    ignore_index: int = -100,
) -> LossFn:
    """Softmax cross-entropy on logits; optional label smoothing and per-class weights."""
    held = _Weighted(class_weights)

    def fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out, y = _flat_logits(out, y)
        return F.cross_entropy(
            out,
            y,
            weight=held.weight(out),
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
        )

    return fn


@register_loss("nll", aliases=("negative_log_likelihood",), tasks=("multiclass",))
def nll(class_weights: Sequence[float] | None = None, ignore_index: int = -100) -> LossFn:
    """Negative log-likelihood of log-probabilities (the model ends in LogSoftmax)."""
    held = _Weighted(class_weights)

    def fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out, y = _flat_logits(out, y)
        return F.nll_loss(out, y, weight=held.weight(out), ignore_index=ignore_index)

    return fn


def _margin(p: int, margin: float, class_weights: Sequence[float] | None) -> LossFn:
    held = _Weighted(class_weights)

    def fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out, y = _flat_logits(out, y)
        return F.multi_margin_loss(out.float(), y, p=p, margin=margin, weight=held.weight(out))

    return fn


@register_loss("hinge", aliases=("multi_margin", "multiclass_hinge", "svm"), tasks=("multiclass",))
def hinge(margin: float = 1.0, class_weights: Sequence[float] | None = None) -> LossFn:
    """Weston-Watkins multi-class hinge, sum_{j != y} max(0, m - s_y + s_j), divided by C."""
    return _margin(1, margin, class_weights)


@register_loss("squared_hinge", aliases=("multiclass_squared_hinge",), tasks=("multiclass",))
def squared_hinge(margin: float = 1.0, class_weights: Sequence[float] | None = None) -> LossFn:
    """Weston-Watkins squared hinge, sum_{j != y} max(0, m - s_y + s_j)^2, divided by C."""
    return _margin(2, margin, class_weights)


@register_loss("ctc", tasks=("ctc",), applies="log_softmax")
def ctc(blank: int = 0, pad: int = -1, zero_infinity: bool = True) -> LossFn:
    """CTC for unaligned sequences: outputs (N, T, C) logits, targets (N, S) padded with ``pad``;
    each sequence's input length is its real one (the padded steps the network marks,
    ``models.layers.packed.StepMask``), so padding never counts."""
    # deeppipe's CTC data put the blank at class 0 and pad label sequences with -1
    # (data.sources.sequences): any other value would train on a label as if it were the blank
    for key, value, fixed in (("blank", blank, 0), ("pad", pad, -1)):
        if value != fixed:
            raise SpecError(f"CTC's {key} is {fixed} in deeppipe's data (class 0 is the blank, label "
                            "sequences end in -1)", path=f"train.loss.{key}", expected=fixed, found=value)

    def fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        per, target_lengths = ctc_losses(out, y, blank=blank, pad=pad, zero_infinity=zero_infinity)
        return (per / target_lengths.clamp_min(1).to(per.dtype)).mean()  # F.ctc_loss's reduction="mean"

    return fn


def ctc_losses(out: torch.Tensor, y: torch.Tensor, *, blank: int = 0, pad: int = -1,
               zero_infinity: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sequence's CTC loss (negative log-likelihood, summed over its labels) and its label
    count; the input lengths leave out the padded steps ``StepMask`` marked."""
    from deeppipe.models.layers.packed import padded_steps

    input_lengths = out.shape[1] - padded_steps(out, blank).sum(dim=1)
    logp = F.log_softmax(out.float(), dim=-1).transpose(0, 1)  # (T, N, C)
    target_lengths = (y != pad).sum(dim=1)
    per = F.ctc_loss(logp, y.clamp_min(0).long(), input_lengths, target_lengths, blank=blank, reduction="none",
                     zero_infinity=zero_infinity)
    return per, target_lengths


@register_loss("reconstruction", aliases=("reconstruction_mse",), tasks=("reconstruction",))
def reconstruction() -> LossFn:
    """Autoencoder reconstruction: mean squared error against the (clean) input."""
    return lambda out, x: F.mse_loss(out.float(), x.reshape(out.shape).float())


@register_loss("reconstruction_mae", tasks=("reconstruction",))
def reconstruction_mae() -> LossFn:
    """Autoencoder reconstruction: mean absolute error against the input."""
    return lambda out, x: F.l1_loss(out.float(), x.reshape(out.shape).float())


@register_loss("reconstruction_bce", tasks=("reconstruction",), applies="sigmoid")
def reconstruction_bce() -> LossFn:
    """Autoencoder reconstruction of [0, 1] inputs: BCE on logits against the input."""
    return lambda out, x: F.binary_cross_entropy_with_logits(
        out.float(), x.reshape(out.shape).float()
    )


DEFAULT_LOSS = {
    "multiclass": "cross_entropy",
    "binary": "bce_with_logits",
    "regression": "mse",
    "reconstruction": "reconstruction",
    "tagging": "step_cross_entropy",  # training.sequence_losses
    "ctc": "ctc",
}


def on_standard_scale(loss: LossFn, model: nn.Module) -> LossFn:
    """The loss a regression network ending in deeppipe's ``Rescale`` (y * std + mean) is trained
    with: of its standardised outputs against the standardised targets. Scored in the target's
    units, the gradient would grow with std^2 (diabetes: std 78, every SGD step 6,000 times too
    large); metrics (rmse, mae) stay in the target's units."""
    scale = getattr(model, "output_scale", None)
    if not isinstance(getattr(scale, "std", None), torch.Tensor):
        return loss

    def fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mean, std = scale.mean, scale.std  # read each call: the buffers follow the model's device
        return loss((out - mean) / std, (_like(out, y) - mean) / std)

    return fn


def declared_loss(model: Any) -> LossConfig | None:
    """The loss a ``model:`` section declares for itself: a zoo file's ``loss:`` (linear_svm ->
    multi_margin) or a layer list's own ``loss:``; None when it declares none."""
    value = getattr(model, "loss", None)
    if getattr(model, "zoo", None) is not None:
        from deeppipe.models.zoo.catalog import load

        value = load(str(model.zoo).lower()).get("loss")
    if value is None:
        return None
    return LossConfig.model_validate(value.model_dump() if isinstance(value, Component) else value)


def with_model_loss(train: TrainConfig, model: Any) -> TrainConfig:
    """``train`` with the model's declared loss when the spec names none: validation and training
    both read this, so they agree on the loss (the task's own is the last default)."""
    if train.loss is not None:
        return train
    declared = declared_loss(model)
    return train if declared is None else train.model_copy(update={"loss": declared})


def loss_name(cfg: LossConfig | None, task: Task) -> str:
    """The registered name of the loss a run uses (the task's default when none is named)."""
    return LOSSES.entry(cfg.name if cfg is not None else DEFAULT_LOSS[task.kind], path="train.loss.name").name


def build_loss(cfg: LossConfig | None, task: Task, *, path: str = "train.loss") -> LossFn:
    """The loss the spec names, or the task's natural one when the spec names none."""
    if cfg is None:
        return LOSSES.get(DEFAULT_LOSS[task.kind])()
    loss = LOSSES.build(cfg.name, cfg.kwargs(), path=path, name_path=join_path(path, "name"))
    if isinstance(loss, type) and issubclass(loss, nn.Module):  # a registered class
        loss = loss()
    if not callable(loss):
        raise TypeError(f"loss factory '{cfg.name}' returned {type(loss).__name__}, not a callable")
    return loss
