"""`deeppipe validate` refuses the sequence misfits a run would fail on (or silently get wrong)."""

from __future__ import annotations

import pytest
import yaml

from deeppipe.errors import SpecError
from deeppipe.spec.checks import check_experiment
from deeppipe.spec.loader import load_spec
from tests.sequences.data import tagging_csv

ALL = {"PackedGRU": {"hidden_size": 8, "output": "all"}}
LAST = {"PackedGRU": {"hidden_size": 8}}
HEAD = {"Linear": {"out_features": "auto"}}
CTC = {"type": "digit_sequences", "strings": True, "count": 40}


def _check(tmp_path, source: dict, layers: list, **sections):
    spec = {"data": {"source": source}, "model": {"layers": layers}, **sections}
    path = tmp_path / "s.yml"
    path.write_text(yaml.safe_dump(spec))
    rs = load_spec(path, check_model=False)  # what `deeppipe validate` does, then:
    return check_experiment(rs.spec, file=rs.file)


@pytest.fixture
def tags(tmp_path) -> dict:
    return {"type": "sequence_csv", "path": str(tagging_csv(tmp_path / "t.csv", n=30)), "id": "seq",
            "order": "step", "label": "tag", "per": "step"}


def test_ctc_needs_a_network_with_per_step_outputs(tmp_path) -> None:
    with pytest.raises(SpecError, match=r"CTC label sequences need per-step outputs \(T, 11\)"):
        _check(tmp_path, CTC, [LAST, HEAD])
    _check(tmp_path, CTC, [ALL, HEAD])  # accepted: (T, 11), blank + ten digits


def test_ctc_loss_on_one_label_per_sequence_is_refused(tmp_path) -> None:
    with pytest.raises(SpecError, match=r"loss .ctc. does not fit a multiclass task \(it aligns label sequences with per-step"):
        _check(tmp_path, {"type": "digit_sequences"}, [LAST, HEAD], train={"loss": {"name": "ctc"}})


def test_tagging_needs_one_output_row_per_step(tmp_path, tags) -> None:
    with pytest.raises(SpecError, match=r"per-step tags need per-step outputs \(T, 3\)"):
        _check(tmp_path, tags, [LAST, HEAD])
    decoder = [LAST, {"StepDecoder": {"steps": 5, "hidden_size": 4, "out_features": 3}}]
    with pytest.raises(SpecError, match="gives 5 steps of tags for inputs of 14 steps"):
        _check(tmp_path, tags, decoder)
    with pytest.raises(SpecError, match=r"(?s)metric 'accuracy' does not fit a tagging task.*step_accuracy"):
        _check(tmp_path, tags, [ALL, HEAD], evaluate={"metrics": ["accuracy"]})
    with pytest.raises(SpecError, match=r"(?s)cross_entropy.*does not fit a tagging task"):
        _check(tmp_path, tags, [ALL, HEAD], train={"loss": {"name": "cross_entropy"}})
    _check(tmp_path, tags, [ALL, HEAD], train={"early_stopping": {"monitor": "val/step_accuracy"}})


def test_per_step_outputs_for_one_label_per_sequence_are_refused(tmp_path) -> None:
    with pytest.raises(SpecError, match=r"(?s)outputs \[8, 10\] per sample \(one row per step\).*one multiclass label"):
        _check(tmp_path, {"type": "digit_sequences"}, [ALL, HEAD])


def test_padding_and_packing_must_agree(tmp_path, tags) -> None:
    with pytest.raises(SpecError, match=r"plain recurrent layer.*read the padding as steps"):
        _check(tmp_path, tags, [{"LSTM": {"hidden_size": 8, "output": "all"}}, HEAD])
    with pytest.raises(SpecError, match=r"packs on a mask channel.*that these samples do not have"):
        _check(tmp_path, {"type": "sklearn", "name": "digits", "as_sequence": True}, [LAST, HEAD])
