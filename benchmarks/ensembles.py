"""Ensembles against the best single model on Fashion-MNIST: test accuracy and wall time of

  * the best single model (of the soft-voting members, chosen on *validation* accuracy),
  * a 5-member soft-voting ensemble (five seeds of the same CNN),
  * a 5-member bagging ensemble (each on its own bootstrap sample, soft voting),
  * a stacking ensemble (three members, logistic regression on 3-fold out-of-fold predictions),

all through deeppipe's own stages (``ensemble.stage.fit_ensemble``, ``evaluation.stage.evaluate``)
on the official test images. The headline is soft voting's gain over the best single model:

  value = soft-voting test accuracy - best single test accuracy (points)   goal >= 0

``--quick`` (and the default on a CPU machine: ``--limit``) trains on part of the data with few
epochs; the JSON records exactly what was run.

    .venv/bin/python benchmarks/ensembles.py [--limit 15000] [--epochs 3] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from _results import write_result  # benchmarks/_results.py (this folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
FASHION = [REPO / "data" / "01_raw" / "fashion-mnist", REPO.parent / "shared" / "data" / "fashion-mnist"]
NAME, GOAL = "ensembles", 0.0
CNN = {"layers": [{"Conv2d": {"out_channels": 16, "kernel_size": 3, "padding": 1}}, {"BatchNorm2d": {}}, {"ReLU": {}},
                  {"MaxPool2d": {"kernel_size": 2}}, {"Conv2d": {"out_channels": 32, "kernel_size": 3, "padding": 1}},
                  {"BatchNorm2d": {}}, {"ReLU": {}}, {"MaxPool2d": {"kernel_size": 2}}, {"Flatten": {}},
                  {"Dropout": {"p": 0.3}}, {"Linear": {"out_features": 10}}]}


def spec(folder: Path, limit: int | None, epochs: int, ensemble: dict[str, Any], name: str) -> Any:
    import yaml

    from deeppipe.spec.loader import load_spec

    raw = {"seed": 42, "data": {"source": {"type": "idx", "path": str(folder)}, "limit": limit,
                                "split": {"val": 0.1, "test": "official", "stratify": True}},
           "model": copy.deepcopy(CNN),
           "train": {"epochs": epochs, "batch_size": 128, "optimizer": {"name": "adamw", "lr": 0.003},
                     "progress": False},
           "evaluate": {"metrics": ["accuracy", "log_loss"]},
           "ensemble": ensemble}
    if limit is None:
        raw["data"].pop("limit")
    tmp = Path(tempfile.mkdtemp()) / f"{name}.yml"
    tmp.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_spec(tmp, check_model=False, check_data=False)


def run(rs: Any, samples: Any, split: Any) -> dict[str, Any]:
    from deeppipe.ensemble.stage import compare, fit_ensemble
    from deeppipe.evaluation.predictor import predictor_for
    from deeppipe.evaluation.stage import evaluate

    t0 = time.perf_counter()
    trained = fit_ensemble(rs, samples, split)
    wall = time.perf_counter() - t0
    result = evaluate(rs, predictor_for(rs.spec, trained.artifact), samples, split, show=False)
    table = compare(rs, trained.artifact, samples, split)
    return {"test_accuracy": result.scalars["accuracy"], "test_log_loss": result.scalars["log_loss"],
            "wall_s": round(wall, 1), "members": table["rows"][:-1],
            "mean_disagreement": table["disagreement"]["mean"], "artifact": trained.artifact}


def best_single(rs: Any, artifact: Any, samples: Any, split: Any, members: list[dict]) -> dict[str, Any]:
    """The member with the best validation accuracy, scored on the test split."""
    from deeppipe.evaluation.metrics import compute_metrics
    from deeppipe.evaluation.predictor import predictor_for

    y = samples.targets()
    val = [compute_metrics(samples.task, y[split.val], predictor_for(rs.spec, artifact.member(i)).predict(
        samples.x[split.val]), ["accuracy"])[0]["accuracy"] for i in range(len(members))]
    i = max(range(len(val)), key=val.__getitem__)
    return {"member": members[i]["model"], "val_accuracy": val[i], "test_accuracy": members[i]["accuracy"],
            "test_log_loss": members[i]["log_loss"], "mean_member_test_accuracy":
            sum(m["accuracy"] for m in members) / len(members)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=15000, help="samples read (0: all 70,000)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1,000 samples, 1 epoch, 2 members (tests)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    limit, epochs = (1000, 1) if args.quick else (args.limit or None, args.epochs)
    n = 2 if args.quick else 5  # members
    folder = next((f for f in FASHION if (f / "train-images-idx3-ubyte.gz").exists()), None)
    if folder is None:
        print(f"{NAME}: skipped, no Fashion-MNIST under {', '.join(map(str, FASHION))}")
        return
    from deeppipe.data.stage import ingest, split

    seeds = [{"seed": s} for s in range(1, n + 1)]
    plans = {"soft_voting": {"method": "soft_voting", "members": seeds},
             "bagging": {"method": "soft_voting", "members": {"bagging": {"n": n}}},
             "stacking": {"method": {"name": "stacking", "folds": min(3, n)}, "members": seeds[:3]}}
    specs = {k: spec(folder, limit, epochs, v, f"fashion_{k}") for k, v in plans.items()}
    samples = ingest(specs["soft_voting"].spec)
    parts = split(specs["soft_voting"].spec, samples)
    results = {k: run(rs, samples, parts) for k, rs in specs.items()}
    soft = results["soft_voting"]
    single = best_single(specs["soft_voting"], soft["artifact"], samples, parts, soft["members"])
    single["wall_s"] = round(soft["wall_s"] / n, 1)  # one of the members' training
    value = soft["test_accuracy"] - single["test_accuracy"]
    record = {
        "name": NAME, "value": round(100 * value, 2), "unit": "accuracy points over the best single model",
        "goal": f">= {GOAL}", "baseline": "the best of the 5 soft-voting members, chosen on validation accuracy",
        "ratio": round(soft["test_accuracy"] / single["test_accuracy"], 4),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__}, "
                   f"load average {os.getloadavg()[0]:.1f}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick,
        "data": {"samples_read": len(samples.x), "train": len(parts.train), "val": len(parts.val),
                 "test": len(parts.test), "epochs": epochs, "quick": args.quick},
        "best_single": single,
        **{k: {kk: vv for kk, vv in r.items() if kk != "artifact"} for k, r in results.items()},
    }
    write_result(record, args.out)
    print(f"best single ({single['member']}): test accuracy {single['test_accuracy']:.4f}, "
          f"~{single['wall_s']} s", file=sys.stderr)
    for k, r in results.items():
        print(f"{k}: test accuracy {r['test_accuracy']:.4f}, log loss {r['test_log_loss']:.4f}, "
              f"{r['wall_s']} s, mean disagreement {r['mean_disagreement']:.4f}", file=sys.stderr)
    print(f"{NAME}: {100 * value:.2f} accuracy points over the best single model (goal >= {GOAL})")


if __name__ == "__main__":
    main()
