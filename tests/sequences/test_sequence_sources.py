"""The labelled sequence sources: long-format CSV, NPZ of concatenated steps, scikit-learn's digits
as trimmed sequences; padding with a mask channel, per-step labels, CTC label sequences, and the
per-feature scaling of the training split's real steps only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deeppipe.data.normalize import compute_stats
from deeppipe.data.sources import load_source
from deeppipe.data.sources.sequences import (
    DigitSequencesSource,
    SequenceCsvSource,
    SequenceNpzSource,
)
from deeppipe.errors import SpecError
from tests.sequences.data import tagging_csv


def _csv(tmp_path, rows, **kw) -> SequenceCsvSource:
    path = tmp_path / "seq.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return SequenceCsvSource(type="sequence_csv", path=str(path), **{"id": "id", "label": "label", **kw})


def test_long_csv_pads_sorts_by_order_and_keeps_lengths(tmp_path) -> None:
    rows = [{"id": "b", "t": 1, "v": 20.0, "label": "cat"}, {"id": "a", "t": 2, "v": 3.0, "label": "dog"},
            {"id": "a", "t": 0, "v": 1.0, "label": "dog"}, {"id": "b", "t": 0, "v": 10.0, "label": "cat"},
            {"id": "a", "t": 1, "v": 2.0, "label": "dog"}, {"id": "c", "t": 0, "v": 7.0, "label": "cat"}]
    s = load_source(_csv(tmp_path, rows, order="t"))
    assert s.x.shape == (3, 3, 2) and s.meta["layout"] == "padded_sequence"
    assert s.task.kind == "binary" and s.task.class_names == ("cat", "dog")
    np.testing.assert_array_equal(s.x[:, :, 0], [[10, 20, 0], [1, 2, 3], [7, 0, 0]])  # first seen: b, a, c
    np.testing.assert_array_equal(s.x[:, :, 1], [[1, 1, 0], [1, 1, 1], [1, 0, 0]])  # the mask channel
    np.testing.assert_array_equal(s.y, [0, 1, 0])


def test_long_csv_refuses_two_labels_in_one_sequence_and_names_unknown_columns(tmp_path) -> None:
    rows = [{"id": 1, "v": 1.0, "label": "x"}, {"id": 1, "v": 2.0, "label": "y"}, {"id": 2, "v": 1.0, "label": "x"}]
    with pytest.raises(SpecError, match="sequence 1 has 2 different labels"):
        load_source(_csv(tmp_path, rows))
    with pytest.raises(SpecError, match="did you mean 'label'"):
        load_source(_csv(tmp_path, rows, label="labell"))


def test_tagging_csv_gives_per_step_targets_padded_with_ignore_index(tmp_path) -> None:
    src = SequenceCsvSource(type="sequence_csv", path=str(tagging_csv(tmp_path / "t.csv", n=30)), id="seq",
                            order="step", label="tag", per="step")
    s = load_source(src)
    lengths = s.x[:, :, -1].sum(axis=1).astype(int)
    assert s.task.kind == "tagging" and s.task.class_names == ("down", "start", "up")
    assert s.y.shape == s.x.shape[:2] and s.x.shape[2] == 3  # x, noise, mask
    for row, n in zip(s.y, lengths):
        assert row[0] == 1 and (row[:n] >= 0).all() and (row[n:] == -100).all()
    assert lengths.min() >= 4 and lengths.max() <= 14 and len(set(lengths)) > 3


def test_npz_of_concatenated_steps_and_ctc_label_sequences(tmp_path) -> None:
    lengths = np.array([2, 4, 3])
    x = np.arange(9 * 2, dtype=np.float32).reshape(9, 2)
    path = tmp_path / "s.npz"
    np.savez(path, x=x, lengths=lengths, y=np.array([0, 2, 1]))
    s = load_source(SequenceNpzSource(type="sequence_npz", path=str(path)))
    assert s.x.shape == (3, 4, 3) and s.task.kind == "multiclass"
    np.testing.assert_array_equal(s.x[1, :, :2], x[2:6])
    np.savez(path, x=x, lengths=lengths, y=np.array([0, 1, 1, 0, 1, 0]), y_lengths=np.array([1, 3, 2]),
             classes=np.array(["a", "b"]))
    c = load_source(SequenceNpzSource(type="sequence_npz", path=str(path)))
    assert c.task.kind == "ctc" and c.task.class_names == ("<blank>", "a", "b") and c.task.num_outputs == 3
    np.testing.assert_array_equal(c.y, [[1, -1, -1], [2, 2, 1], [2, 1, -1]])
    np.savez(path, x=x, lengths=np.array([2, 4, 2]), y=np.array([0, 2, 1]))
    with pytest.raises(SpecError, match="lengths do not add up"):
        load_source(SequenceNpzSource(type="sequence_npz", path=str(path)))
    np.savez(path, x=np.array([x[:2], x[2:6]], dtype=object), lengths=lengths, y=np.array([0, 2, 1]))
    with pytest.raises(SpecError, match="object arrays are refused"):  # no pickle is ever loaded
        load_source(SequenceNpzSource(type="sequence_npz", path=str(path)))


def test_digit_sequences_are_real_and_of_varying_length() -> None:
    s = load_source(DigitSequencesSource(type="digit_sequences"))
    lengths = s.x[:, :, -1].sum(axis=1).astype(int)
    assert s.x.shape == (1797, 8, 9) and s.task.num_classes == 10
    ones, zeros = lengths[s.y == 1], lengths[s.y == 0]
    assert lengths.min() == 2 and lengths.max() == 8 and ones.mean() < zeros.mean() - 0.5  # a "1" is narrower
    strings = load_source(DigitSequencesSource(type="digit_sequences", strings=True, count=50, max_digits=3))
    label_lengths = (strings.y >= 0).sum(axis=1)
    assert strings.task.kind == "ctc" and set(label_lengths) <= {1, 2, 3} and len(set(label_lengths)) > 1


def test_padded_sequences_scaled_per_feature_on_real_training_steps_only(tmp_path) -> None:
    src = SequenceCsvSource(type="sequence_csv", path=str(tagging_csv(tmp_path / "t.csv", n=60)), id="seq",
                            order="step", label="tag", per="step")
    s = load_source(src)
    train = np.arange(40)
    mean, std = compute_stats(s.x[train], "padded_sequence")
    real = s.x[train][s.x[train][:, :, -1] > 0][:, :2]
    np.testing.assert_allclose(mean, [*real.mean(axis=0), 0.0], rtol=1e-5)
    np.testing.assert_allclose(std, [*real.std(axis=0), 1.0], rtol=1e-5)
    padded_mean = s.x[train][:, :, :2].reshape(-1, 2).mean(axis=0)
    assert abs(padded_mean[0] - mean[0]) > 1e-3 or abs(s.x[train][:, :, 1].std() - std[1]) > 1e-2  # padding excluded
    everything = s.x[s.x[:, :, -1] > 0][:, :2].mean(axis=0)
    assert not np.allclose(mean[:2], everything)  # validation and test steps never enter


def test_a_sequence_with_a_missing_value_is_named_or_dropped(tmp_path) -> None:
    rows = [{"id": "a", "v": 1.0, "label": "x"}, {"id": "a", "v": None, "label": "x"},
            {"id": "b", "v": 2.0, "label": "y"}, {"id": "c", "v": 3.0, "label": "x"}]
    src = _csv(tmp_path, rows)
    with pytest.raises(SpecError, match=r"(?s)1 row\(s\) with a missing.*column 'v', row 3"):
        load_source(src)
    s = load_source(src, on_error="skip")
    assert len(s.x) == 2 and s.x[:, 0, 0].tolist() == [2.0, 3.0]
