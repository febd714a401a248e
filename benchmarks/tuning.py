"""What pruning saves on a fixed Fashion-MNIST search, and what deeppipe's tuning loop costs per trial.

1. Pruning: the same search (space, TPE sampler and seed, trial budget, trial epochs) on a
   Fashion-MNIST slice, run three times through ``deeppipe.tuning.stage.tune``: with no pruner,
   with the median pruner and with Hyperband. Reported for each: total epochs trained, wall
   time, and the best validation accuracy. Goal: a pruner trains at least 40% fewer epochs and
   finds a best value within 0.5 percentage points of the unpruned search.
2. Overhead: everything a trial costs besides training (sampling, loading and validating the
   sampled spec, scoring, storage writes, callbacks, crash bookkeeping), in ms per trial, with
   the embedded journal storage and with PostgreSQL (if reachable). Measured as a study's wall
   time minus the time spent inside the train stage. Goal: under 50 ms per trial.

Run: ``.venv/bin/python benchmarks/tuning.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from _results import write_json  # benchmarks/_results.py (this folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
FASHION = ROOT.parent / "shared" / "data" / "fashion-mnist"
PG = "postgresql://postgres@127.0.0.1:5432"


def search_spec(limit: int, trials: int, epochs: int, pruner: Any) -> dict[str, Any]:
    return {
        "seed": 0,
        "data": {"source": {"type": "idx", "path": str(FASHION)}, "split": {"val": 0.15, "test": "official"},
                 "limit": limit},
        "model": {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 128}}, {"ReLU": {}},
                             {"Dropout": {"p": 0.2}}, {"Linear": {"out_features": 10}}]},
        "train": {"epochs": epochs, "batch_size": 128, "optimizer": {"name": "adam", "lr": 0.001}, "progress": False},
        "tune": {"objective": "val/accuracy", "n_trials": trials, "epochs": epochs, "pruner": pruner,
                 "sampler": {"name": "tpe", "n_startup_trials": 8},
                 "space": {"train.optimizer.lr": {"float": [1.0e-5, 0.3], "log": True},
                           "train.optimizer.name": {"choices": ["adam", "sgd"]},
                           "train.optimizer.momentum": {"float": [0.0, 0.95], "when": {"train.optimizer.name": "sgd"}},
                           "model.layers[3].Dropout.p": {"float": [0.0, 0.6]},
                           "train.batch_size": {"choices": [64, 128, 256]}}},
    }


def run_search(spec: dict[str, Any], work: Path, name: str, fit_time: list[float] | None = None) -> dict[str, Any]:
    from deeppipe.data.stage import ingest, split
    from deeppipe.spec.loader import load_spec
    from deeppipe.tuning.stage import tune

    path = work / f"{name}.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    rs = load_spec(path)
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    t0 = time.perf_counter()
    result = tune(rs, samples, parts, folder=work / f"{name}-study")
    wall = time.perf_counter() - t0
    best = result.best
    return {"epochs": best["epochs"], "wall_s": round(wall, 2), "best_val_accuracy": best["values"]["val/accuracy"],
            "trials": best["trials"], "best_trial": best["trial"], "best_params": best["params"]}


def pruning(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    pruners = {"none": "none",
               "median": {"name": "median", "n_startup_trials": 5, "n_warmup_steps": 1},
               "hyperband": {"name": "hyperband", "min_resource": 1, "reduction_factor": 3}}
    out = {}
    for name, pruner in pruners.items():
        spec = search_spec(args.limit, args.trials, args.epochs, pruner)
        out[name] = run_search(spec, work, f"prune-{name}")
        r = out[name]
        print(f"  {name:9s}: {r['epochs']:4d} epochs, {r['wall_s']:7.1f} s, best val accuracy "
              f"{100 * r['best_val_accuracy']:.2f}% ({r['trials']})", flush=True)
    base = out["none"]
    for name in ("median", "hyperband"):
        r = out[name]
        r["fewer_epochs_pct"] = round(100 * (1 - r["epochs"] / base["epochs"]), 1)
        r["wall_saved_pct"] = round(100 * (1 - r["wall_s"] / base["wall_s"]), 1)
        r["best_delta_pp"] = round(100 * (r["best_val_accuracy"] - base["best_val_accuracy"]), 2)
        r["meets_goal"] = r["fewer_epochs_pct"] >= 40 and r["best_delta_pp"] >= -0.5
    return out


def overhead(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Per-trial ms outside the train stage: the wall time of the trial loop (``study.search``:
    not the one-off validation, study opening and figures) minus the time inside ``fit``."""
    import deeppipe.tuning.objective as objective
    import deeppipe.tuning.study as study

    inside: list[float] = []
    loop: list[float] = []
    real_fit, real_search = objective.fit, study.search

    def timed(fn: Any, into: list[float]) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                into.append(time.perf_counter() - t)

        return wrapper

    objective.fit, study.search = timed(real_fit, inside), timed(real_search, loop)
    spec = {"seed": 0, "data": {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.2, "test": 0.2}},
            "model": {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 16}}, {"ReLU": {}},
                                 {"Linear": {"out_features": 10}}]},
            "train": {"epochs": 1, "batch_size": 256, "progress": False},
            "tune": {"objective": "val/accuracy", "n_trials": args.overhead_trials, "sampler": "tpe",
                     "pruner": {"name": "median", "n_startup_trials": 5},
                     "space": {"train.optimizer.lr": {"float": [1.0e-4, 0.1], "log": True},
                               "model.layers[1].Linear.out_features": {"int": [8, 32]}}}}
    stores: dict[str, str | None] = {"journal": None}
    pg = _pg_database()
    if pg is not None:
        stores["postgresql"] = pg[0]
    out: dict[str, Any] = {}
    try:
        for store, url in stores.items():
            inside.clear()
            loop.clear()
            s = {**spec, "tune": {**spec["tune"], **({"storage": url} if url else {})}}
            r = run_search(s, work, f"overhead-{store}")
            n = sum(r["trials"].values())
            per_trial = (sum(loop) - sum(inside)) / n * 1000
            out[store] = {"ms_per_trial": round(per_trial, 1), "trials": n, "loop_s": round(sum(loop), 2),
                          "stage_wall_s": r["wall_s"],
                          "train_stage_s": round(sum(inside), 2),
                          "median_train_stage_ms": round(1000 * statistics.median(inside), 1)}
            print(f"  overhead {store:10s}: {per_trial:6.1f} ms per trial over {n} trials "
                  f"(train stage {1000 * statistics.median(inside):.0f} ms median)", flush=True)
    finally:
        objective.fit, study.search = real_fit, real_search
        if pg is not None:
            pg[1]()
    return out


def _pg_database() -> tuple[str, Any] | None:
    try:
        import psycopg2

        conn = psycopg2.connect(f"{PG}/postgres", connect_timeout=3)
    except Exception as exc:
        print(f"  PostgreSQL not reachable ({exc}): overhead with the embedded storage only")
        return None
    conn.autocommit = True
    name = f"deeppipe_bench_{uuid.uuid4().hex[:8]}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")

    def drop() -> None:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.close()

    return f"{PG}/{name}", drop


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--limit", type=int, default=None, help="Fashion-MNIST samples read (train + official test)")
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--overhead-trials", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tuning.json")
    args = ap.parse_args()
    args.limit = args.limit or (6000 if args.quick else 20000)
    args.trials = args.trials or (12 if args.quick else 30)
    args.epochs = args.epochs or (4 if args.quick else 10)
    args.overhead_trials = args.overhead_trials or (15 if args.quick else 60)
    os.environ.setdefault("MPLBACKEND", "Agg")
    import logging

    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    if not FASHION.exists():  # the search runs on a Fashion-MNIST slice: nothing to measure without it
        print(f"tuning: skipped, no Fashion-MNIST at {FASHION}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.chdir(work)
        print(f"pruning: {args.trials} trials x {args.epochs} epochs, Fashion-MNIST slice of {args.limit}", flush=True)
        prune = pruning(args, work)
        cost = overhead(args, work)
    best = max(("median", "hyperband"), key=lambda k: (prune[k]["meets_goal"], prune[k]["fewer_epochs_pct"]))
    headline = prune[best]["fewer_epochs_pct"]
    worst_ms = max(v["ms_per_trial"] for v in cost.values())
    payload = {
        "name": "tuning",
        "value": headline,
        "unit": f"% fewer training epochs ({best} pruner vs none; best val accuracy "
                f"{prune[best]['best_delta_pp']:+.2f} pp)",
        "goal": ">= 40 % fewer epochs within 0.5 pp; < 50 ms per-trial overhead",
        "baseline": f"the same search without pruning: {prune['none']['epochs']} epochs, "
                    f"best {100 * prune['none']['best_val_accuracy']:.2f}%",
        "ratio": round(prune[best]["epochs"] / prune["none"]["epochs"], 3),
        "pruning": prune,
        "overhead_ms_per_trial": cost,
        "overhead_goal_met": worst_ms < 50,
        "search": {"limit": args.limit, "trials": args.trials, "epochs": args.epochs, "sampler": "tpe", "seed": 0},
        "quick": args.quick,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__}, 1 thread, "
                   f"load average {os.getloadavg()[0]:.1f}",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_json(args.out, payload)
    costs = ", ".join(f"{k} {v['ms_per_trial']} ms" for k, v in cost.items())
    print(f"  per-trial overhead: {costs} (goal < 50 ms)")
    print(f"tuning: {headline} % fewer epochs with {best} pruning, best {prune[best]['best_delta_pp']:+.2f} pp "
          f"(goal >= 40 % within 0.5 pp)")


if __name__ == "__main__":
    main()
