"""Time series as forecasting samples: sliding windows of ``lookback`` steps as inputs and the
next ``horizon`` steps of the target columns as targets, from a CSV with a time column or from a
real series bundled with statsmodels.

Windows are made here, in time order, from the raw values. The split then cuts them by time and
never shuffles across train/val/test (``data.split.make_split`` with a ``time_gap``), dropping
the windows whose targets would reach into the next part; the model's Standardize scales each
feature with the training part's statistics (``layout: sequence`` in the samples' meta), and the
regression targets are standardised on the training part as for any regression. With
``relative: true`` the network sees each window minus its last value and forecasts the change
(``artifact.WindowRelative``, inside the saved model, so it still takes and returns raw values).

Inputs are ``(N, lookback, features)``; targets ``(N, horizon * targets)``, step-major (step 1 of
every target column, then step 2, ...).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from deeppipe.config import Strict
from deeppipe.data.sources.base import DataError, Reader, Samples, read_frame
from deeppipe.data.task import Task
from deeppipe.errors import SpecError, unknown
from deeppipe.registry import SOURCES

log = logging.getLogger(__name__)
MIN_WINDOWS = 10


class _Windows(Strict):
    lookback: int = Field(ge=1, le=100_000, description="input steps per window")
    horizon: int = Field(1, ge=1, le=10_000, description="steps forecast at once")
    season: int | None = Field(None, ge=2, le=100_000,
                               description="season length in steps (12 for monthly data): the seasonal-naive baseline")
    targets: list[str] | None = Field(None, description="columns to forecast (default: every value column)")
    relative: bool = Field(False, description="inputs and targets relative to each window's last value: a trending "
                                              "series' network learns the change, not a level it never saw")


class TimeseriesCsvSource(_Windows):
    """A CSV with one row per time step: a time column (rows are sorted by it) and value columns."""

    type: Literal["timeseries_csv"]
    path: str
    time: str | None = Field(None, description="the time column (default: the rows' order)")
    columns: list[str] | None = Field(None, description="value columns (default: every column but time)")


# real series that ship inside statsmodels (statsmodels.datasets): how each becomes one regular series
STATSMODELS = {
    "co2": "Mauna Loa atmospheric CO2 (ppm), weekly 1958-2001, as monthly means: 526 steps, season 12",
    "sunspots": "yearly sunspot numbers 1700-2008: 309 steps, a cycle of about 11 years",
    "nile": "yearly flow of the Nile at Aswan 1871-1970: 100 steps",
}


class StatsmodelsSource(_Windows):
    """A real series bundled with statsmodels (no download): ``co2``, ``sunspots`` or ``nile``."""

    type: Literal["statsmodels"]
    name: str


def _statsmodels_frame(name: str) -> Any:
    if name not in STATSMODELS:
        raise unknown("statsmodels series", name, STATSMODELS, path="data.source.name")
    from statsmodels import datasets

    if name == "co2":  # weekly with gaps: monthly means, gaps between months interpolated
        weekly = datasets.co2.load_pandas().data
        return weekly["co2"].resample("MS").mean().interpolate().to_frame("co2")
    if name == "sunspots":
        data = datasets.sunspots.load_pandas().data
        return data.set_index(data["YEAR"].astype(int))[["SUNACTIVITY"]].rename(columns={"SUNACTIVITY": "sunspots"})
    data = datasets.nile.load_pandas().data
    return data.set_index(data["year"].astype(int))[["volume"]]


def _csv_frame(src: TimeseriesCsvSource, on_error: str) -> Any:
    import pandas as pd

    path = Path(src.path)
    frame = read_frame(path)
    if src.time is not None:
        if src.time not in frame.columns:
            raise unknown("column", src.time, list(frame.columns), path="data.source.time", file=str(path))
        column = frame[src.time]
        order = column if pd.api.types.is_numeric_dtype(column) else pd.to_datetime(column, errors="coerce")
        if order.isna().any():
            row = int(np.flatnonzero(order.isna().to_numpy())[0])
            raise DataError("a time value cannot be read as a date or number", file=str(path),
                            path="data.source.time", found=f"{frame[src.time].iloc[row]!r} in row {row + 2}")
        if order.duplicated().any():
            row = int(np.flatnonzero(order.duplicated().to_numpy())[0])
            raise DataError("two rows have the same time", file=str(path), path="data.source.time",
                            found=f"{frame[src.time].iloc[row]!r} in row {row + 2}")
        frame = frame.set_index(order).sort_index().drop(columns=[src.time])
    columns = src.columns or list(frame.columns)
    for i, c in enumerate(columns):
        if c not in frame.columns:
            raise unknown("column", c, list(frame.columns), path=f"data.source.columns[{i}]", file=str(path))
    frame = frame[columns].apply(pd.to_numeric, errors="coerce")
    bad = frame.isna().to_numpy()
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        if on_error == "raise":
            raise DataError(f"{int(bad.sum())} missing or non-numeric value(s)", file=str(path),
                            expected="numbers in every value column (or data.on_error: skip to interpolate the gaps)",
                            found=f"column {columns[col]!r}, data row {row + 1}")
        if bad.all(axis=0).any():
            raise DataError("a value column has no number at all", file=str(path),
                            found=columns[int(np.flatnonzero(bad.all(axis=0))[0])])
        log.warning("interpolated %d missing value(s) of %s (data.on_error: skip)", int(bad.sum()), path)
        frame = frame.interpolate(limit_direction="both")
    return frame


def windows(values: np.ndarray, target_idx: list[int], lookback: int,
            horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """``(N, lookback, F)`` inputs and ``(N, horizon * K)`` targets, window ``i`` starting at step ``i``."""
    steps = len(values)
    n = steps - lookback - horizon + 1
    if n < MIN_WINDOWS:
        raise SpecError(f"the series has {steps} steps: too few for windows of {lookback} + {horizon} steps",
                        path="data.source.lookback",  # a spec mistake: validation names the spec file
                        expected=f"lookback + horizon <= {steps - MIN_WINDOWS + 1} (at least {MIN_WINDOWS} windows)",
                        found=lookback)
    start = np.arange(n)[:, None]
    x = values[start + np.arange(lookback)[None]]
    y = values[start + lookback + np.arange(horizon)[None]][:, :, target_idx]
    return x.astype(np.float32), y.reshape(n, horizon * len(target_idx)).astype(np.float32)


def _samples(frame: Any, src: _Windows, where: str, source: str) -> Samples:
    columns = [str(c) for c in frame.columns]
    targets = src.targets or columns
    for i, t in enumerate(targets):
        if t not in columns:
            raise unknown("column", t, columns, path=f"data.source.targets[{i}]", file=where)
    target_idx = [columns.index(t) for t in targets]
    values = frame.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise DataError("the series has infinite values", file=where)
    x, y = windows(values, target_idx, src.lookback, src.horizon)
    if src.season is not None and src.season > src.lookback:
        raise SpecError("the seasonal-naive baseline needs a whole season in each window", path="data.source.season",
                        expected=f"season <= lookback ({src.lookback})", found=src.season)
    index = [str(v)[:10] if str(v).endswith(" 00:00:00") else str(v)[:19] for v in frame.index]
    meta = {"source": source, "layout": "sequence", "window": {
        "lookback": src.lookback, "horizon": src.horizon, "season": src.season, "columns": columns,
        "targets": targets, "target_index": target_idx, "relative": src.relative,
        # the time of each window's first target step: the forecast plot's x axis
        "times": index[src.lookback:src.lookback + len(x)]}}
    return Samples(x, y, Task("regression", src.horizon * len(targets)), meta=meta)


@SOURCES.register("timeseries_csv", config=TimeseriesCsvSource)
class TimeseriesCsvReader(Reader):
    @staticmethod
    def read(src: Any, on_error: str) -> Samples:
        return _samples(_csv_frame(src, on_error), src, str(src.path), f"csv:{src.path}")


@SOURCES.register("statsmodels", config=StatsmodelsSource)
class StatsmodelsReader(Reader):
    @staticmethod
    def read(src: Any, on_error: str) -> Samples:
        return _samples(_statsmodels_frame(src.name), src, f"statsmodels:{src.name}", f"statsmodels:{src.name}")
