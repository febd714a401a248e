"""Tracking overhead: milliseconds per epoch that deeppipe's MLflow logging costs, with the embedded
SQLite store (what `kedro run` uses by default) and with PostgreSQL, against MLflow alone.

deeppipe logs one epoch's metrics through its real tracker (deeppipe.tracking.mlflow_tracker.
MlflowTracker: one synchronous ``log_batch`` per epoch) into one run; MLflow alone logs the same
values with ``mlflow.log_metrics(..., step=)`` into another run of the same store. The metrics
are the keys and values of a real epoch record (a one-epoch fit() on digits with validation).
The two are interleaved epoch by epoch, wall-clock time (the store's work happens in the
database too), median over epochs; the first epoch of each (table creation, connection warm-up)
is left out.

  ratio = median(MLflow alone per epoch) / median(deeppipe per epoch)       goal >= 0.9

PostgreSQL: postgresql://postgres@127.0.0.1:5432, a fresh database created and dropped here;
when the server (or psycopg2) is missing that store is skipped and the output says so.

    .venv/bin/python benchmarks/tracking_overhead.py [--quick] [--epochs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from _results import write_result  # benchmarks/_results.py (this folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
NAME, GOAL = "tracking_overhead", 0.9
PG = "postgresql://postgres@127.0.0.1:5432"


def epoch_record() -> dict[str, float]:
    """The metrics fit() logs for one epoch (digits, a small MLP, validation on)."""
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    from deeppipe.data.batches import TensorBatches
    from deeppipe.data.task import Task
    from deeppipe.training import fit

    torch.set_num_threads(1)
    d = load_digits()
    x, y = torch.tensor(d.data / 16.0, dtype=torch.float32), torch.tensor(d.target)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    result = fit(
        model,
        TensorBatches(x[:1500], y[:1500], 64, seed=0),
        TensorBatches(x[1500:], y[1500:], 512, shuffle=False),
        {"epochs": 1, "progress": False},
        Task("multiclass", 10),
    )
    return {k: v for k, v in result.history[0].items() if k != "epoch"}


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty database on this machine's PostgreSQL (dropped afterwards)."""
    import psycopg2

    conn = psycopg2.connect(f"{PG}/postgres", connect_timeout=3)
    conn.autocommit = True
    name = f"deeppipe_bench_{uuid.uuid4().hex[:8]}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{PG}/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.close()


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(uri: str, metrics: dict[str, float], epochs: int) -> dict:
    """deeppipe's tracker and mlflow.log_metrics, interleaved epoch by epoch on one store."""
    import mlflow

    from deeppipe.tracking.mlflow_tracker import MlflowTracker

    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment(f"tracking_overhead_{uuid.uuid4().hex[:6]}")
        ours, alone = [], []
        with mlflow.start_run(run_name="mlflow_alone"):
            client = mlflow.MlflowClient()
            active = mlflow.active_run()
            run = client.create_run(active.info.experiment_id, run_name="deeppipe")
            tracker = MlflowTracker(run.info.run_id)
            for step in range(1, epochs + 2):
                ours.append(_timed(lambda s=step: tracker.log_metrics(metrics, step=s)))
                alone.append(_timed(lambda s=step: mlflow.log_metrics(metrics, step=s)))
            client.set_terminated(run.info.run_id)
            logged = client.get_metric_history(run.info.run_id, "train/loss")
    finally:
        mlflow.set_tracking_uri("")
    ours, alone = ours[1:], alone[1:]  # the first carries table creation and connection set-up
    return {
        "deeppipe_ms_per_epoch": 1000 * statistics.median(ours),
        "mlflow_alone_ms_per_epoch": 1000 * statistics.median(alone),
        "ratio": statistics.median(alone) / statistics.median(ours),
        "epochs": epochs,
        "metrics_per_epoch": len(metrics),
        "steps_logged": len(logged),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 epochs per store (tests)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs logged per store")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    epochs = args.epochs or (5 if args.quick else 60)
    metrics = epoch_record()
    stores: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        stores["sqlite"] = measure(f"sqlite:///{tmp}/mlflow.db", metrics, epochs)
    try:
        with postgres_database() as uri:
            stores["postgresql"] = measure(uri, metrics, epochs)
    except Exception as exc:  # psycopg2 missing or the server not reachable: say so, go on
        skipped["postgresql"] = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
        print(f"PostgreSQL skipped ({skipped['postgresql']})", file=sys.stderr)
    head = stores["sqlite"]
    value = round(head["deeppipe_ms_per_epoch"], 3)
    record = {
        "name": NAME,
        "value": value,
        "unit": "ms of MLflow logging per epoch (embedded SQLite store)",
        "goal": f">= {GOAL} x MLflow alone",
        "baseline": "mlflow.log_metrics of the same values into the same store, interleaved",
        "ratio": round(min(s["ratio"] for s in stores.values()), 4),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, load average "
        f"{os.getloadavg()[0]:.1f}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "clock": "wall-clock (the store works in the database too)",
        "stores": stores,
        "skipped": skipped,
        "metric_keys": sorted(metrics),
    }
    write_result(record, args.out)
    for name, s in stores.items():
        print(
            f"{name}: deeppipe {s['deeppipe_ms_per_epoch']:.2f} ms per epoch, MLflow alone "
            f"{s['mlflow_alone_ms_per_epoch']:.2f} ms, ratio {s['ratio']:.3f} "
            f"({s['epochs']} epochs of {s['metrics_per_epoch']} metrics)",
            file=sys.stderr,
        )
    pg = stores.get("postgresql")
    pg_text = f", PostgreSQL {pg['deeppipe_ms_per_epoch']:.2f} ms" if pg else ", PostgreSQL skipped"
    print(f"{NAME}: {value:.2f} ms per epoch (SQLite{pg_text}; {record['ratio']:.3f} x MLflow "
          f"alone, goal >= {GOAL})")


if __name__ == "__main__":
    main()
