"""Each registered loss against its formula; task defaults; a custom loss through the registry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deeppipe.data.task import Task
from deeppipe.errors import SpecError
from deeppipe.registry import LOSSES
from deeppipe.training import build_loss, fit, register_loss
from deeppipe.training.config import LossConfig

from .helpers import mlp, quiet

BIN, MULTI, REG = Task("binary", 1), Task("multiclass", 4), Task("regression", 1)


def _loss(name: str, task: Task = MULTI, **kw):
    return build_loss(LossConfig(name=name, **kw), task)


def test_regression_losses_match_their_formulas():
    out = torch.tensor([[0.5], [2.0], [-1.0], [4.0]])
    y = torch.tensor([0.0, 2.5, -1.0, 1.0])  # (N,) targets against (N, 1) outputs
    e = out.squeeze(1) - y
    assert float(_loss("mse", REG)(out, y)) == pytest.approx(float((e**2).mean()))
    assert float(_loss("mae", REG)(out, y)) == pytest.approx(float(e.abs().mean()))
    d = 1.0
    huber = torch.where(e.abs() <= d, 0.5 * e**2, d * (e.abs() - 0.5 * d)).mean()
    assert float(_loss("huber", REG, delta=d)(out, y)) == pytest.approx(float(huber))
    assert float(_loss("huber", REG, delta=5.0)(out, y)) == pytest.approx(
        float(0.5 * (e**2).mean())
    )


def test_bce_on_logits_with_flat_targets():
    logits = torch.tensor([[2.0], [-1.0], [0.3]])
    y = torch.tensor([1.0, 0.0, 0.0])
    p = torch.sigmoid(logits.squeeze(1))
    expect = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    assert float(_loss("bce", BIN)(logits, y)) == pytest.approx(float(expect), rel=1e-5)
    assert float(build_loss(None, BIN)(logits, y)) == pytest.approx(float(expect), rel=1e-5)


def test_cross_entropy_label_smoothing_and_class_weights():
    torch.manual_seed(0)
    logits, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 1, 1])
    logp = F.log_softmax(logits, dim=1)
    plain = -logp[torch.arange(6), y].mean()
    assert float(_loss("cross_entropy")(logits, y)) == pytest.approx(float(plain), rel=1e-5)
    eps = 0.1
    smooth = ((1 - eps) * -logp[torch.arange(6), y] + eps * -logp.mean(dim=1)).mean()
    assert float(_loss("cross_entropy", label_smoothing=eps)(logits, y)) == pytest.approx(
        float(smooth), rel=1e-5
    )
    w = torch.tensor([1.0, 0.5, 2.0, 1.0])
    weighted = (w[y] * -logp[torch.arange(6), y]).sum() / w[y].sum()
    assert float(_loss("ce", class_weights=w.tolist())(logits, y)) == pytest.approx(
        float(weighted), rel=1e-5
    )
    assert float(_loss("nll")(logp, y)) == pytest.approx(float(plain), rel=1e-5)


def test_hinge_is_weston_watkins_divided_by_the_number_of_classes():
    torch.manual_seed(1)
    s, y = torch.randn(5, 4), torch.tensor([0, 3, 1, 2, 2])
    margins = (1 - s[torch.arange(5), y][:, None] + s).clamp_min(0)
    margins[torch.arange(5), y] = 0  # j != y
    assert float(_loss("hinge")(s, y)) == pytest.approx(float(margins.sum(1).mean() / 4), rel=1e-5)
    assert float(_loss("squared_hinge")(s, y)) == pytest.approx(
        float((margins**2).sum(1).mean() / 4), rel=1e-5
    )


def test_ctc_and_reconstruction():
    torch.manual_seed(2)
    out = torch.randn(3, 12, 5)  # (N, T, C) batch-first logits, blank = 0
    targets = torch.tensor([[1, 2, 3], [4, 4, -1], [2, -1, -1]])
    got = _loss("ctc")(out, targets)
    ref = F.ctc_loss(
        F.log_softmax(out, -1).transpose(0, 1),
        torch.tensor([1, 2, 3, 4, 4, 2]),
        torch.full((3,), 12),
        torch.tensor([3, 2, 1]),
        zero_infinity=True,
    )
    assert float(got) == pytest.approx(float(ref), rel=1e-5)
    x = torch.rand(4, 1, 3, 3)
    recon = build_loss(None, Task("reconstruction", 9))
    assert float(recon(x.reshape(4, 9) * 0, x)) == pytest.approx(float((x**2).mean()))


def test_unknown_loss_and_unknown_argument():
    with pytest.raises(SpecError) as err:
        _loss("cross_entropi")
    assert "train.loss.name" in str(err.value) and "did you mean 'cross_entropy'" in str(err.value)
    with pytest.raises(SpecError) as err:
        _loss("cross_entropy", smoothing=0.1)
    assert "train.loss.smoothing" in str(err.value) and "label_smoothing" in str(err.value)


def test_custom_loss_through_the_registry(digits_sources, scratch_registries):
    calls = []

    @register_loss("test_focal")
    class Focal(nn.Module):
        """Focal loss (Lin et al.): down-weights easy examples."""

        def __init__(self, gamma: float = 2.0) -> None:
            super().__init__()
            self.gamma = gamma

        def forward(self, out, y):
            calls.append(1)
            logp = F.log_softmax(out, 1).gather(1, y[:, None]).squeeze(1)
            return (-((1 - logp.exp()) ** self.gamma) * logp).mean()

    assert "test_focal" in LOSSES
    train, val = digits_sources
    r = fit(
        mlp(),
        train,
        val,
        quiet(epochs=2, optimizer={"lr": 0.01}, loss={"name": "test_focal", "gamma": 1.5}),
        Task("multiclass", 10),
    )
    assert calls and r.history[-1]["val/accuracy"] > 0.7
    with pytest.raises(SpecError, match=r"train.loss.alpha"):
        _loss("test_focal", alpha=0.25)


def test_multiclass_hinge_trains_a_linear_svm(digits_sources):
    train, val = digits_sources
    torch.manual_seed(0)
    svm = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    r = fit(
        svm,
        train,
        val,
        quiet(epochs=3, optimizer={"name": "sgd", "lr": 0.5}, loss={"name": "squared_hinge"}),
        Task("multiclass", 10),
    )
    assert r.history[-1]["val/accuracy"] > 0.8


def test_sequence_tagging_many_to_many():
    """Batch-first (N, T, C) logits with (N, T) tags: cross-entropy per step, token accuracy."""
    from deeppipe.data.batches import TensorBatches

    torch.manual_seed(0)
    x = torch.randn(256, 6, 3)
    tags = (x[..., 0] > 0).long() + (x[..., 1] > 1).long()  # a tag per step, 3 classes

    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn, self.head = nn.GRU(3, 16, batch_first=True), nn.Linear(16, 3)

        def forward(self, seq):
            return self.head(self.rnn(seq)[0])

    logits = torch.randn(4, 6, 3)
    expect = F.cross_entropy(logits.reshape(-1, 3), tags[:4].reshape(-1))
    assert float(_loss("cross_entropy")(logits, tags[:4])) == pytest.approx(float(expect))
    train = TensorBatches(x[:200], tags[:200], 32, seed=0)
    val = TensorBatches(x[200:], tags[200:], 64, shuffle=False)
    r = fit(Tagger(), train, val, quiet(epochs=6, optimizer={"lr": 0.02}), Task("multiclass", 3))
    assert r.history[-1]["val/accuracy"] > 0.85


def test_perceptron_criterion_is_max_0_minus_y_f_with_labels_plus_minus_one():
    out = torch.tensor([[2.0], [-0.5], [0.3], [-1.5], [0.0]], requires_grad=True)
    y = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0])  # deeppipe's 0/1 labels are the perceptron's -1/+1
    s = 2 * y - 1
    loss = _loss("perceptron", BIN)(out, y)
    assert float(loss) == pytest.approx(float(torch.clamp(-s * out.detach()[:, 0], min=0).mean()))
    assert float(loss) == pytest.approx((0.5 + 0.3) / 5)
    loss.backward()
    # a gradient only where y f(x) <= 0 (the mistakes, and the undecided f = 0): -y / n
    assert out.grad[:, 0].tolist() == pytest.approx([0.0, -0.2, 0.2, 0.0, -0.2])
    assert LOSSES.entry("perceptron").tasks == ("binary",) and LOSSES.entry("perceptron").applies is None
