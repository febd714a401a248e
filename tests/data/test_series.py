"""Time series as forecasting samples (issue 13, sequences): windows, a split by time that never
leaks the future, per-feature scaling on the training part only, naive baselines, and a real
series (statsmodels' CO2) forecast better than both baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from deeppipe.data.normalize import Standardize, compute_stats
from deeppipe.data.sources import load_source
from deeppipe.data.split import make_split, time_gap
from deeppipe.errors import SpecError
from deeppipe.evaluation.forecast import naive, seasonal_naive
from deeppipe.spec.loader import load_spec


def _csv(tmp_path: Path, steps: int = 200, shuffle: bool = True) -> Path:
    """Two columns on very different scales, one row per day; rows written out of order."""
    t = np.arange(steps)
    frame = pd.DataFrame({"day": pd.date_range("2020-01-01", periods=steps, freq="D").astype(str),
                          "temp": 10 + 5 * np.sin(2 * np.pi * t / 7), "sales": 1000.0 + 3 * t})
    if shuffle:
        frame = frame.sample(frac=1.0, random_state=0)
    path = tmp_path / "series.csv"
    frame.to_csv(path, index=False)
    return path


def _spec(tmp_path: Path, source: dict, **extra) -> Path:
    spec = {"seed": 1, "data": {"source": source, "split": {"val": 0.2, "test": 0.2}},
            "model": {"layers": [{"LSTM": {"hidden_size": 8, "output": "last"}}, {"Linear": {"out_features": "auto"}}]},
            "train": {"epochs": 1, "progress": False}, **extra}
    path = tmp_path / "forecast.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_windows_follow_time_and_hold_the_next_steps(tmp_path: Path) -> None:
    rs = load_spec(_spec(tmp_path, {"type": "timeseries_csv", "path": str(_csv(tmp_path)), "time": "day",
                                    "lookback": 14, "horizon": 3, "targets": ["sales"]}))
    s = load_source(rs.spec.data.source)
    assert s.x.shape == (200 - 14 - 3 + 1, 14, 2) and s.y.shape == (184, 3)
    # rows were shuffled in the file: sorted by the time column, sales rise by 3 a day
    assert np.allclose(np.diff(s.x[0, :, 1]), 3.0)
    # window i's targets are the 3 days after its lookback
    assert np.allclose(s.y[5], 1000 + 3 * np.arange(5 + 14, 5 + 17))
    assert s.meta["window"]["times"][0] == "2020-01-15" and s.meta["layout"] == "sequence"


def test_the_split_never_trains_on_the_future_it_is_scored_on(tmp_path: Path) -> None:
    rs = load_spec(_spec(tmp_path, {"type": "timeseries_csv", "path": str(_csv(tmp_path)), "time": "day",
                                    "lookback": 10, "horizon": 5}))
    s = load_source(rs.spec.data.source)
    parts = make_split(s.y, s.task, val=0.2, test=0.2, stratify=True, seed=3, time_gap=time_gap(s.meta))
    tr, va, te = parts["train"], parts["val"], parts["test"]
    assert len(tr) and len(va) and len(te)
    for part in (tr, va, te):  # contiguous blocks, in time order
        assert np.array_equal(part, np.arange(part[0], part[-1] + 1))
    lookback, horizon = 10, 5
    last_step = lambda idx: idx.max() + lookback + horizon - 1  # noqa: E731  (the last raw step a window touches)
    first_target = lambda idx: idx.min() + lookback  # noqa: E731
    assert last_step(tr) < first_target(va) and last_step(va) < first_target(te)
    # the same seed or another: a time split does not shuffle
    again = make_split(s.y, s.task, val=0.2, test=0.2, stratify=True, seed=99, time_gap=time_gap(s.meta))
    assert all(np.array_equal(parts[k], again[k]) for k in ("train", "val", "test"))


def test_features_are_scaled_per_feature_on_the_training_part(tmp_path: Path) -> None:
    rs = load_spec(_spec(tmp_path, {"type": "timeseries_csv", "path": str(_csv(tmp_path)), "time": "day",
                                    "lookback": 10}))
    s = load_source(rs.spec.data.source)
    tr = make_split(s.y, s.task, val=0.2, test=0.2, stratify=False, seed=0, time_gap=time_gap(s.meta))["train"]
    mean, std = compute_stats(s.x[tr], "sequence")
    assert mean.shape == (2,)  # one statistic per feature, never one per time step
    assert mean[1] == pytest.approx(float(s.x[tr][:, :, 1].mean()), rel=1e-5)
    assert mean[1] < float(s.x[:, :, 1].mean())  # sales rise: the training part's mean is lower than the whole's
    scaled = Standardize(mean, std, 2, feature_last=True)(torch.from_numpy(s.x[tr])).numpy()
    assert np.allclose(scaled.mean(axis=(0, 1)), 0, atol=1e-4) and np.allclose(scaled.std(axis=(0, 1)), 1, atol=1e-3)


def test_naive_and_seasonal_naive_forecasts(tmp_path: Path) -> None:
    steps = np.arange(120, dtype=np.float64)
    periodic = np.sin(2 * np.pi * steps / 12)
    x = np.stack([periodic[i:i + 24] for i in range(80)])[:, :, None]
    window = {"lookback": 24, "horizon": 15, "season": 12, "target_index": [0]}
    truth = np.stack([periodic[i + 24:i + 39] for i in range(80)])
    assert np.allclose(seasonal_naive(x, window), truth)  # a purely periodic series: exact
    assert np.allclose(naive(x, window), x[:, -1, 0:1].repeat(15, axis=1))


@pytest.mark.parametrize(("split", "extra", "word"), [
    ({"val": 0.1, "test": "official"}, {}, "official"),
    ({"val": 0.1, "test": 0.2, "folds": 3}, {}, "k-fold"),
    ({"val": 0.1, "test": 0.2}, {"lookback": 195}, "too few"),
    ({"val": 0.1, "test": 0.2}, {"season": 30}, "season"),
    ({"val": 0.45, "test": 0.45}, {"horizon": 20}, "none is left for training"),
])
def test_validation_refuses_what_a_series_cannot_do(tmp_path: Path, split: dict, extra: dict, word: str) -> None:
    source = {"type": "timeseries_csv", "path": str(_csv(tmp_path)), "time": "day", "lookback": 14, **extra}
    path = _spec(tmp_path, source)
    raw = yaml.safe_load(path.read_text())
    raw["data"]["split"] = split
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert word in str(err.value) and str(path) in str(err.value)


def test_bad_series_files_are_named(tmp_path: Path) -> None:
    csv = _csv(tmp_path, shuffle=False)
    text = csv.read_text().splitlines()
    text[5] = text[5].split(",")[0] + ",oops,1012.0"
    csv.write_text("\n".join(text) + "\n")
    src = {"type": "timeseries_csv", "path": str(csv), "time": "day", "lookback": 10}
    with pytest.raises(SpecError) as err:
        load_spec(_spec(tmp_path, src))
    assert "temp" in str(err.value) and "data row 5" in str(err.value)
    rs = load_spec(_spec(tmp_path, src, data={"source": src, "on_error": "skip", "split": {"val": 0.2, "test": 0.2}}))
    s = load_source(rs.spec.data.source, on_error="skip")  # the gap interpolated, the spacing kept
    assert np.isfinite(s.x).all() and len(s.x) == 200 - 10 - 1 + 1
    (tmp_path / "clean").mkdir()
    clean = {**src, "path": str(_csv(tmp_path / "clean"))}
    with pytest.raises(SpecError) as err:
        load_spec(_spec(tmp_path, {**clean, "targets": ["sale"]}))
    assert "did you mean 'sales'?" in str(err.value)


def test_a_real_series_is_forecast_better_than_both_baselines(tmp_path: Path, monkeypatch) -> None:
    """statsmodels' Mauna Loa CO2 through the stage functions: the shipped experiment, fewer epochs."""
    from deeppipe.artifact import load_artifact, save_artifact
    from deeppipe.stages import run_experiment

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "pipelines/co2_lstm.yml").read_text())
    raw["train"]["epochs"] = 12
    path = tmp_path / "co2_lstm.yml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    run = run_experiment(load_spec(path))
    metrics = run.evaluation.metrics
    mae, base = metrics["test"]["mae"], metrics["baselines"]
    assert mae < 0.6 * base["seasonal_naive"]["mae"] < base["naive"]["mae"], metrics
    assert "forecast" in run.evaluation.plots
    # the saved model takes raw windows and returns raw CO2 levels (ppm), relative or not
    save_artifact(run.trained.artifact, tmp_path / "model")
    net = load_artifact(tmp_path / "model").build()
    x = run.samples.x[run.split.test[:4]]
    with torch.no_grad():
        out = net(torch.from_numpy(x)).numpy()
    assert out.shape == (4, 12) and out.min() > 300 and out.max() < 400


def test_npz_sequences_are_not_taken_for_images(tmp_path: Path) -> None:
    """3-D float arrays are (N, steps, features): never divided by 255, scaled per feature; 8-bit
    and 4-D arrays stay images."""
    rng = np.random.default_rng(0)
    seq = np.stack([rng.normal(0, 1, (60, 20)), rng.normal(50, 10, (60, 20))], axis=-1).astype(np.float32)
    np.savez(tmp_path / "seq.npz", x=seq, y=(seq[:, :, 0].mean(1) > 0).astype(np.int64))
    np.savez(tmp_path / "img.npz", x=rng.integers(0, 256, (60, 8, 8, 3), dtype=np.uint8), y=np.arange(60) % 2)
    s = load_source(load_spec(_spec(tmp_path, {"type": "npz", "path": str(tmp_path / "seq.npz")})).spec.data.source)
    assert s.meta["layout"] == "sequence" and np.array_equal(s.x, seq)  # raw values kept
    mean, _ = compute_stats(s.x, s.meta["layout"])
    assert mean.shape == (2,) and mean[1] == pytest.approx(50, abs=1.5)
    img = load_source(load_spec(_spec(tmp_path, {"type": "npz", "path": str(tmp_path / "img.npz")},
                                      model={"layers": [{"Flatten": {}}, {"Linear": {"out_features": "auto"}}]}
                                      )).spec.data.source)
    assert img.x.shape == (60, 3, 8, 8) and img.x.max() <= 1.0 and "layout" not in img.meta


def test_digits_read_as_sequences_of_rows(tmp_path: Path) -> None:
    rs = load_spec(_spec(tmp_path, {"type": "sklearn", "name": "digits", "as_sequence": True}))
    s = load_source(rs.spec.data.source)
    assert s.x.shape == (1797, 8, 8) and s.meta["layout"] == "sequence" and s.task.num_classes == 10
    with pytest.raises(SpecError) as err:
        load_spec(_spec(tmp_path, {"type": "sklearn", "name": "iris", "as_sequence": True}))
    assert "as_sequence" in str(err.value)
