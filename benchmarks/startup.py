"""Start-up: what a whole `kedro run` spends outside training and evaluation (issue 14, item 1).

`kedro run --pipeline digits_cnn --params train.epochs=1` in a throw-away copy of the project, in a
fresh interpreter each round (the embedded MLflow store already created, as after a first run).
The headline figure is the run's wall time minus its training and evaluation time (the time the
trainer and the evaluate stage log), median over rounds; goal < 3 s on a 2-core machine.

Where the seconds go comes from one more round under cProfile (which inflates Python-heavy parts
by roughly 1.5x): imports (anywhere in the run), validation (the spec loader), the MLflow run's
set-up (kedro-mlflow's hook), training, evaluation, registration (model logging and the
registry), and the rest (Kedro's session and catalog, dataset I/O, hooks). Phases overlap with
the imports made inside them.

Baseline: a hand-written script in a fresh interpreter that imports torch and scikit-learn, loads
the same digits, and trains the same network for one epoch; ratio = deeppipe's whole run / the
script's whole run (what the declarative run, its tracking, registry and reports cost on top).

The record's ``where`` table (shown in BENCHMARKS.md) splits the headline figure: one more round
under CPython's import timer (``PYTHONPROFILEIMPORTTIME``) gives each top-level package's own
import time (every module's self time goes to its package, so the parts add up to the run's whole
import time), brought to the plain runs' pace; beside it deeppipe's own modules, the rest, the
cProfile phases, and the interpreter teardown ``deeppipe.fast_exit`` skips (each round also runs
once with ``DEEPPIPE_FULL_EXIT=1``).

    .venv/bin/python benchmarks/startup.py [--quick] [--rounds N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from _results import write_result  # benchmarks/_results.py (this folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
NAME, GOAL = "startup", 3.0
BIN = Path(sys.executable).parent

HAND_WRITTEN = """
import time
t0 = time.perf_counter()
import numpy as np, torch
from torch import nn
from sklearn.datasets import load_digits
torch.manual_seed(42)
d = load_digits()
x = torch.from_numpy((d.images / 16.0).astype(np.float32)[:, None]); y = torch.from_numpy(d.target)
net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1),
                    nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3),
                    nn.Linear(64 * 16, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(net.parameters(), lr=0.002)
for i in torch.randperm(1257).split(64):
    opt.zero_grad(); nn.functional.cross_entropy(net(x[i]), y[i]).backward(); opt.step()
print(time.perf_counter() - t0)
"""

PROFILED = """
import cProfile, sys
sys.argv = ["kedro", "run", "--pipeline", "digits_cnn", "--params", "train.epochs=1"]
from kedro.framework.cli import main
prof = cProfile.Profile()
try:
    prof.runcall(main)
except SystemExit:
    pass
prof.dump_stats("{out}")
"""

PHASES = {  # (file suffix, function): the phase its cumulative time is
    "validation": ("deeppipe/spec/loader.py", "load_spec"),
    "mlflow_setup": ("kedro_mlflow/framework/hooks/mlflow_hook.py", "before_pipeline_run"),
    "training": ("deeppipe/training/trainer.py", "run"),
    "evaluation": ("deeppipe/evaluation/stage.py", "evaluate"),
    "registration": ("deeppipe/tracking/stage.py", "register"),
    "imports": ("<frozen importlib._bootstrap>", "_find_and_load"),
}


def _env() -> dict[str, str]:
    e = dict(os.environ)
    e.update({"KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
              "PATH": f"{BIN}{os.pathsep}{e.get('PATH', '')}", "DEEPPIPE_DEFAULT_EXPERIMENT": "digits_cnn"})
    e.pop("MLFLOW_TRACKING_URI", None)
    return e


def _kedro(root: Path, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    """The measured command in ``root``, with ``env`` added: the process and its wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run(["kedro", "run", "--pipeline", "digits_cnn", "--params", "train.epochs=1"], cwd=root,
                          env={**_env(), **env}, capture_output=True, text=True, timeout=600)
    return proc, time.perf_counter() - t0


def kedro_round(root: Path, full_exit: bool = False) -> dict[str, float]:
    """One whole run; ``full_exit``: with CPython's interpreter teardown (deeppipe.fast_exit off)."""
    proc, wall = _kedro(root, **({"DEEPPIPE_FULL_EXIT": "1"} if full_exit else {}))
    if proc.returncode != 0:
        raise SystemExit(f"kedro run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    history = json.loads((root / "data/08_reporting/digits_cnn/history.json").read_text())
    return {"wall_s": wall, "training_s": sum(h["epoch_time_s"] for h in history)}


def import_round(root: Path) -> tuple[dict[str, float], float]:
    """Seconds of import per top-level package in one whole run (CPython's ``-X importtime``), and
    that run's wall time (to bring the seconds to the plain runs' pace)."""
    proc, wall = _kedro(root, PYTHONPROFILEIMPORTTIME="1")
    if proc.returncode != 0:
        raise SystemExit(f"kedro run (import timer) failed:\n{proc.stderr[-2000:]}")
    return imports_by_package(proc.stderr), wall


def imports_by_package(stderr: str) -> dict[str, float]:
    """``import time: self [us] | cumulative | imported package`` lines -> seconds per top-level package.

    Each module's own (self) time goes to its top-level package (``torch._dynamo.utils`` -> torch),
    whoever imported it: the seconds each package's own modules take to load, adding up to the
    run's whole import time without double counting."""
    out: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") < 2:
            continue
        own, _, name = line[len("import time:"):].split("|", 2)
        try:
            us = int(own)
        except ValueError:  # the header line
            continue
        package = name.strip().split(".")[0]
        out[package] = out.get(package, 0.0) + us / 1e6
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


NAMES = {"torch": "torch (with torch._dynamo, which every Optimizer.step imports)", "mlflow": "MLflow",
         "sklearn": "scikit-learn (the digits source, metrics)", "scipy": "SciPy (scikit-learn's)",
         "matplotlib": "matplotlib (plots)", "pandas": "pandas (tables; MLflow's and Kedro's too)",
         "sqlalchemy": "SQLAlchemy (MLflow's store)", "alembic": "Alembic (MLflow's store)",
         "kedro": "Kedro", "kedro_mlflow": "kedro-mlflow", "sympy": "SymPy (torch's)", "numpy": "NumPy",
         "pydantic": "pydantic (deeppipe's schema, MLflow's)", "pyarrow": "pyarrow (pandas')",
         "fastapi": "FastAPI (imported by MLflow itself, for its gateway)"}


def where(value: float, imports: dict[str, float], scale: float, profile: dict[str, float],
          teardown: float | None = None) -> dict:
    """The headline figure split into the import floor (third-party packages' own import time, at the
    plain runs' pace), deeppipe's own modules, and the rest; cProfile's phases beside them."""
    third = {k: v for k, v in imports.items() if k != "deeppipe"}
    rows = [[NAMES.get(k, k), round(v, 2), "import"] for k, v in third.items() if v >= 0.1]
    small = [v for v in third.values() if v < 0.1]
    floor, own = sum(third.values()), imports.get("deeppipe", 0.0)
    rows.append([f"{len(small)} other packages and standard-library modules", round(sum(small), 2), "import"])
    rows.append(["deeppipe's own modules (their own code; what they import is counted above)", round(own, 2), "import"])
    rest = value - floor - own
    rows.append(["everything else outside training and evaluation: Kedro's session and catalog, validation's "
                 "checks, the MLflow run, dataset writes, registration, hooks", round(rest, 2), "rest"])
    for phase in ("validation", "mlflow_setup", "registration"):
        if phase in profile:
            rows.append([f"{phase} (cProfile, with the imports made inside it)", round(profile[phase] * scale, 2),
                         "phase"])
    if teardown is not None:
        rows.append(["CPython's interpreter teardown at exit, skipped by deeppipe.fast_exit (not in the figure)",
                     round(teardown, 2), "saved"])
    return {"title": f"the {value:.2f} s outside training and evaluation: {floor:.2f} s importing the packages the "
                     f"run needs, {own:.2f} s deeppipe's own modules, {rest:.2f} s the rest",
            "columns": ["part", "s", "kind"], "rows": rows, "floor_s": round(floor, 2)}


def profile_round(root: Path) -> dict[str, float]:
    out = root / "startup.prof"
    code = PROFILED.replace("{out}", str(out))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=root, env=_env(), capture_output=True, text=True, timeout=600,
                   check=True)
    wall = time.perf_counter() - t0
    stats = pstats.Stats(str(out)).stats  # {(file, line, func): (cc, nc, tt, ct, callers)}
    phases = {}
    for phase, (suffix, func) in PHASES.items():
        phases[phase] = round(sum(v[3] for (f, _, fn), v in stats.items() if f.endswith(suffix) and fn == func), 3)
    # Kedro's CLI has a main() calling KedroCLI.main(): the outermost holds the whole run
    top = max(v[3] for (f, _, fn), v in stats.items() if fn == "main" and f.endswith("kedro/framework/cli/cli.py"))
    phases["whole_run_profiled"] = round(top, 3)
    phases["other"] = round(top - sum(phases[p] for p in ("validation", "mlflow_setup", "training", "evaluation",
                                                          "registration")), 3)
    phases["process_wall_profiled"] = round(wall, 3)
    return phases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one round each, no warm-up, profile or import round")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    from tests.integration.conftest import make_project

    with tempfile.TemporaryDirectory() as tmp:
        root = make_project(Path(tmp) / "p", {"digits_cnn": yaml.safe_load((REPO / "pipelines/digits_cnn.yml").read_text())})
        if not args.quick:  # the first run creates the MLflow store: not what a user waits for every time
            kedro_round(root)
        ours, hand, teardown = [], [], []
        for _ in range(rounds):  # interleaved: both see the same machine state
            ours.append(kedro_round(root))
            if not args.quick:  # what deeppipe.fast_exit saves: the same run with the full teardown
                teardown.append(kedro_round(root, full_exit=True)["wall_s"] - ours[-1]["wall_s"])
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", HAND_WRITTEN], env=_env(), capture_output=True, check=True, timeout=300)
            hand.append(time.perf_counter() - t0)
        profile = {} if args.quick else profile_round(root)
        imports, import_wall = ({}, 0.0) if args.quick else import_round(root)
    walls = [r["wall_s"] for r in ours]
    # the evaluate stage logs no time of its own: its share of the profiled run, at the unprofiled pace
    scale = statistics.median(walls) / profile["process_wall_profiled"] if profile else 0.0
    evaluation = profile.get("evaluation", 0.0) * scale
    value = statistics.median(r["wall_s"] - r["training_s"] for r in ours) - evaluation
    record = {
        "name": NAME, "value": round(value, 2),
        "unit": "s of a `kedro run` outside training and evaluation (digits_cnn, 1 epoch, median)",
        "goal": f"< {GOAL} s", "baseline": "a hand-written script: import torch + scikit-learn, load digits, train the "
        "same network one epoch, in a fresh interpreter", "ratio": round(statistics.median(walls) / statistics.median(hand), 2),
        "whole_run_s": round(statistics.median(walls), 2), "hand_written_s": round(statistics.median(hand), 2),
        "training_s": round(statistics.median(r["training_s"] for r in ours), 2), "evaluation_s": round(evaluation, 2),
        "teardown_skipped_s": round(statistics.median(teardown), 2) if teardown else None,
        "profile_s": profile,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick, "rounds": rounds,
    }
    # the import-timed run's seconds at the plain runs' pace (the timer itself costs a little)
    pace = statistics.median(walls) / import_wall if import_wall else 1.0
    imports = {k: v * pace for k, v in imports.items()}
    record["imports_s"] = {k: round(v, 3) for k, v in imports.items() if v >= 0.001}
    record["where"] = where(value, imports, scale or 1.0, profile, record["teardown_skipped_s"])
    write_result(record, args.out)
    if profile:
        print("where the seconds go (cProfile, inflated ~1.5x): " + ", ".join(f"{k} {v:.2f}" for k, v in profile.items()))
    print(f"whole run {record['whole_run_s']} s (training {record['training_s']} s), hand-written script "
          f"{record['hand_written_s']} s: ratio {record['ratio']}")
    print(f"{NAME}: {record['value']} s (goal < {GOAL} s)")


if __name__ == "__main__":
    main()
