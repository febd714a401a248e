"""CTC on padded sequences uses each sequence's real length: padded steps never emit a label, and
a padded batch scores (loss and greedy decoding) as each sequence does alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deeppipe.artifact import assemble
from deeppipe.data.sources.sequences import PAD_LABEL, pad, pad_labels
from deeppipe.data.task import Task
from deeppipe.evaluation.sequence_metrics import edit_accuracy, greedy_decode, sequence_accuracy
from deeppipe.models.layers.packed import padded_steps
from deeppipe.training.losses import build_loss, ctc_losses

MODEL = {"layers": [{"PackedGRU": {"hidden_size": 12, "output": "all", "bidirectional": True}},
                    {"Linear": {"out_features": "auto"}}]}


def _network(features: int = 3, classes: int = 4):
    task = Task("ctc", classes + 1, ("<blank>", *map(str, range(classes))))
    torch.manual_seed(0)
    meta = {"task": task.to_dict(), "input_shape": [9, features + 1], "layout": "padded_sequence"}
    return assemble(MODEL, meta).eval(), task


def _head(net) -> torch.nn.Linear:
    return [m for m in net.body.modules() if isinstance(m, torch.nn.Linear)][-1]


def _batch(lengths=(9, 4, 6, 2), labels=((1, 2, 3), (2,), (4, 4), (1,)), features: int = 3):
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(n, features)).astype(np.float32) for n in lengths]
    return seqs, pad(seqs), pad_labels([np.asarray(lab) for lab in labels], 3, PAD_LABEL)


def test_padded_batch_gives_each_sequence_its_own_ctc_loss() -> None:
    net, task = _network()
    seqs, x, y = _batch()
    with torch.no_grad():
        out = net(torch.from_numpy(x))
        batch, _ = ctc_losses(out, torch.from_numpy(y))
        alone = [ctc_losses(net(torch.from_numpy(pad([s]))), torch.from_numpy(y[i:i + 1]))[0].item()
                 for i, s in enumerate(seqs)]
        np.testing.assert_allclose(batch.numpy(), alone, rtol=1e-5)
        # the same without the mask: every padded step would count (the losses of the short ones change)
        unmasked = net.body(net.normalizer(torch.from_numpy(x)))
        full = torch.nn.functional.ctc_loss(unmasked.log_softmax(-1).transpose(0, 1), torch.from_numpy(y).clamp_min(0),
                                            torch.full((4,), 9), (torch.from_numpy(y) != PAD_LABEL).sum(1),
                                            reduction="none")
        assert not np.allclose(full.numpy()[1:], alone[1:], rtol=1e-3)
        assert np.isclose(full.numpy()[0], alone[0], rtol=1e-5)  # the longest has no padding
        # the registered loss (reduction: mean over sequences of loss / label count) agrees
        mean = build_loss(None, task)(out, torch.from_numpy(y)).item()
        counts = (y != PAD_LABEL).sum(1)
        assert np.isclose(mean, float(np.mean(np.asarray(alone) / counts)), rtol=1e-5)
    # padded steps are exactly the certain blank, real steps never are
    mask = padded_steps(out)
    assert mask.sum(1).tolist() == [0, 5, 3, 7]


def test_greedy_decoding_ignores_padded_steps() -> None:
    net, _ = _network()
    seqs, x, _ = _batch()
    with torch.no_grad():
        _head(net).bias.data[1:] += 5.0  # a head biased towards labels: padded steps would emit label 1
        out = net(torch.from_numpy(x)).numpy()
        alone = [greedy_decode(net(torch.from_numpy(pad([s]))).numpy())[0] for s in seqs]
        raw = net.body(net.normalizer(torch.from_numpy(x))).numpy()
    assert greedy_decode(out) == alone
    assert greedy_decode(raw) != alone  # without the mask the padding emits labels
    probs = torch.softmax(torch.from_numpy(out), -1).numpy()
    truth = pad_labels([np.asarray(a) + 0 for a in alone], max(map(len, alone)), PAD_LABEL)
    assert sequence_accuracy(truth, probs) == 1.0 and edit_accuracy(truth, probs) == 1.0


def test_gradient_of_a_padded_batch_equals_that_of_its_sequences_alone() -> None:
    net, task = _network()
    seqs, x, y = _batch()
    loss = build_loss(None, task)
    net.zero_grad()
    loss(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    batch_grad = _head(net).weight.grad.clone()
    net.zero_grad()
    for i, s in enumerate(seqs):
        (loss(net(torch.from_numpy(pad([s]))), torch.from_numpy(y[i:i + 1])) / len(seqs)).backward()
    torch.testing.assert_close(_head(net).weight.grad, batch_grad, rtol=1e-4, atol=1e-6)


def test_outputs_shorter_than_the_input_get_the_lengths_scaled() -> None:
    from deeppipe.models.layers.packed import StepMask

    x = torch.from_numpy(pad([np.ones((6, 2), np.float32), np.ones((3, 2), np.float32)]))  # (2, 6, 3)
    out = StepMask("padded_sequence")(x, torch.randn(2, 3, 5))  # a stride-2 network: 3 output steps
    assert padded_steps(out).tolist() == [[False, False, False], [False, False, True]]  # 6 -> 3, 3 -> 2 (rounded up)


def test_a_ctc_blank_or_pad_other_than_the_datas_is_refused_by_validation():
    from deeppipe.errors import SpecError
    from deeppipe.training.checks import validate_config

    for key, value in (("blank", 3), ("pad", 0)):
        with pytest.raises(SpecError, match=rf"train\.loss\.{key}"):
            validate_config({"loss": {"name": "ctc", key: value}})
    validate_config({"loss": {"name": "ctc", "blank": 0, "pad": -1}})
