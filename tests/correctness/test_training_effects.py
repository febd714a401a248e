"""The catalogue's optimisation and initialisation statements, shown by their effect on deeppipe's
own training loop (real digits): stochastic gradient descent with one sample per step, a new
shuffle order every epoch (and the same one after a resume), the logged weight norm, and the
symmetry that only random initialisation breaks."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deeppipe.data.batches import TensorBatches
from deeppipe.data.task import Task
from deeppipe.errors import SpecError
from deeppipe.tracking.tracker import MemoryTracker
from deeppipe.training import fit

TASK = Task("multiclass", 10, tuple(str(i) for i in range(10)))


def _order(n: int, batch_size: int, seed: int, epoch: int) -> list[int]:
    """The sample order TensorBatches gives for an epoch, read through its own API."""
    ids = torch.arange(n)
    return torch.cat([b for b, _ in TensorBatches(ids, ids, batch_size, seed=seed).epoch(epoch)]).tolist()


def test_sgd_with_batch_size_one_steps_once_per_sample_in_the_shuffled_order(digits):
    """batch_size: 1 is stochastic gradient descent: one update per sample, in a shuffled order."""
    x, y = (torch.from_numpy(a[:120]) for a in digits)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    ref = copy.deepcopy(model)
    result = fit(model, TensorBatches(x, y, 1, seed=3), None,
                 {"epochs": 2, "batch_size": 1, "progress": False, "optimizer": {"name": "sgd", "lr": 0.05}}, TASK,
                 seed=3)
    opt = torch.optim.SGD(ref.parameters(), lr=0.05)
    for epoch in range(2):
        for i in _order(120, 1, 3, epoch):
            opt.zero_grad()
            F.cross_entropy(ref(x[i : i + 1]), y[i : i + 1]).backward()
            opt.step()
    assert max(float((a - b).detach().abs().max()) for a, b in zip(model.parameters(), ref.parameters())) < 1e-6
    assert result.epochs_run == 2


class Recording:
    """A batch source that remembers which samples each epoch's batches held, in order."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> None:
        self.data = TensorBatches(x, y, batch_size, seed=seed)
        self.ids = TensorBatches(torch.arange(len(x)), torch.arange(len(x)), batch_size, seed=seed)
        self.batch_size, self.num_samples = batch_size, len(x)
        self.seen: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self.data)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.seen[epoch] = []
        for (xb, yb), (ib, _) in zip(self.data.epoch(epoch), self.ids.epoch(epoch)):
            self.seen[epoch].extend(ib.tolist())
            yield xb, yb


class Crash(MemoryTracker):
    def log_metrics(self, metrics, step=None):
        super().log_metrics(metrics, step)
        if step == 2:  # epochs count from 1: the second epoch, 0-based loop index 1
            raise KeyboardInterrupt("simulated crash after logging epoch 2")


def test_a_new_shuffle_order_every_epoch_and_the_same_orders_after_a_resume(digits, tmp_path):
    x, y = (torch.from_numpy(a[:300]) for a in digits)
    cfg = {"epochs": 4, "batch_size": 32, "progress": False, "optimizer": {"name": "sgd", "lr": 0.05}}

    def model() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

    straight = Recording(x, y, 32, seed=5)
    fit(model(), straight, None, cfg, TASK, seed=5)
    orders = [straight.seen[e] for e in range(4)]
    assert all(sorted(o) == list(range(300)) for o in orders)  # every sample once per epoch
    assert len({tuple(o) for o in orders}) == 4  # a new order every epoch
    assert orders[0] != list(range(300))

    first = Recording(x, y, 32, seed=5)
    with pytest.raises(KeyboardInterrupt):
        fit(model(), first, None, cfg, TASK, seed=5, checkpoint_dir=tmp_path, spec_hash="h", tracker=Crash())
    again = Recording(x, y, 32, seed=5)  # a fresh process would build a fresh source
    result = fit(model(), again, None, cfg, TASK, seed=5, checkpoint_dir=tmp_path, spec_hash="h")
    assert result.resumed_from == 1 and sorted(again.seen) == [1, 2, 3]  # epoch 2 (index 1) crashed before its save
    assert [again.seen[e] for e in (1, 2, 3)] == orders[1:]  # the orders the uninterrupted run saw


def test_logged_weight_norm_is_the_l2_norm_of_every_parameter(digits_sources_small):
    train, val = digits_sources_small
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))
    history = fit(model, train, val, {"epochs": 2, "progress": False}, TASK).history
    by_hand = sum(float((p.detach().double() ** 2).sum()) for p in model.parameters()) ** 0.5
    assert history[-1]["weight_norm"] == pytest.approx(by_hand, rel=1e-6)
    assert history[0]["weight_norm"] != history[1]["weight_norm"]


@pytest.fixture
def digits_sources_small(digits):
    x, y = (torch.from_numpy(a) for a in digits)
    return TensorBatches(x[:1200], y[:1200], 64, seed=0), TensorBatches(x[1200:], y[1200:], 512, shuffle=False)


def test_constant_initialisation_never_breaks_symmetry_and_random_does(digits_sources_small):
    """CATALOGUE: constant initialisation makes every unit of a layer learn the same thing."""
    from deeppipe.models import build_model

    train, val = digits_sources_small
    spec = {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 12}, "name": "hidden"}, {"Tanh": {}},
                       {"Linear": {"out_features": 10}}]}
    cfg = {"epochs": 3, "progress": False, "optimizer": {"name": "sgd", "lr": 0.2, "momentum": 0.9}}
    spreads, accuracy = {}, {}
    for init in ({"name": "constant", "val": 0.05}, "auto"):
        torch.manual_seed(0)
        net = build_model({**spec, "init": init}, (1, 8, 8), 10)
        accuracy[str(init)] = fit(net, train, val, cfg, TASK).history[-1]["val/accuracy"]
        w = net.hidden.weight.detach()
        spreads[str(init)] = float((w - w[0]).abs().max())  # how far the units are from unit 0
        if init != "auto":
            assert torch.allclose(net.hidden.bias, net.hidden.bias[0].expand(12), atol=1e-6)
    constant = str({"name": "constant", "val": 0.05})
    assert spreads[constant] < 1e-5 and spreads["auto"] > 0.1  # 12 copies of one unit vs 12 units
    assert accuracy["auto"] > accuracy[constant] + 0.1


def test_early_stopping_on_a_test_quantity_is_refused_before_training(tmp_path):
    import yaml

    from deeppipe.spec.loader import load_spec

    f = tmp_path / "peek.yml"
    f.write_text(yaml.safe_dump({"data": {"source": {"type": "sklearn", "name": "iris"}},
                                 "model": {"layers": [{"Linear": {"out_features": 3}}]},
                                 "train": {"early_stopping": {"monitor": "test/accuracy"}}}))
    with pytest.raises(SpecError, match="monitor the validation set, never the test set") as err:
        load_spec(f)
    assert err.value.path == "train.early_stopping.monitor" and "val/accuracy" in str(err.value)
