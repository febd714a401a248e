"""Reliability under hostile input and faults (issue 15), the long version of tests/reliability.

Four parts, each counting what happened to every case:

- specs: seeded mutations of valid specs (a hostile value at 1-3 random key paths, and the
  listed hostile files); each is validated with a watchdog, and each accepted one is run for one
  epoch in its own process. A refusal must be one SpecError naming the file; an accepted spec must
  train and evaluate.
- data: every hostile data fixture of tests/reliability/test_hostile_data.py, with
  ``on_error: raise`` (must be refused) and ``skip`` (must read, dropping what is bad).
- kills: a real ``kedro run`` SIGKILLed inside each atomic write of a run (the data set, split,
  checkpoint, model folder, reports) and mid-training, then run again: the rerun must finish with
  every artefact present and whole, no MLflow run left RUNNING, no epoch logged twice, no
  temporary left, and weights bit-identical to an uninterrupted run.
- concurrency: two runs of one experiment started together: one runs, the other is refused.

    .venv/bin/python benchmarks/reliability_fuzz.py [--quick] [--specs N] [--out DIR]

Prints the counts, and last ``reliability_fuzz: <failures> failures (goal 0)`` where failures are
tracebacks + hangs + silently wrong results + data lost; writes benchmarks/results/reliability_fuzz.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _results import write_result  # noqa: E402  (benchmarks/_results.py: this folder is on sys.path)

from deeppipe.errors import SpecError  # noqa: E402
from deeppipe.spec.loader import load_spec  # noqa: E402
from deeppipe.spec.paths import flatten, set_path  # noqa: E402

NAME = "reliability_fuzz"
HANG_S = 20


def _hostile() -> tuple[list, list[str]]:
    """The property test's hostile values and key paths (tests/spec/test_validation.py), and more."""
    from tests.spec.test_validation import HOSTILE, HOSTILE_PATHS

    values = [*HOSTILE, 2**31, 1e-300, "none", [1, 2, 3], {"name": "bogus"}, "Conv2d", 3.7, "val/loss"]
    paths = [*HOSTILE_PATHS, "train.clip.norm", "train.mixup.alpha", "train.early_stopping.patience",
             "model.width_multiplier", "augment.train", "evaluate.metrics", "register.alias", "train.precision",
             "data.normalize", "imports"]
    return values, paths


class Hang(Exception):
    pass


def _alarm(*_: object) -> None:
    raise Hang()


def _bases() -> list[dict]:
    from tests.spec.test_validation import DIGITS, REGRESSION, TABLE

    return [DIGITS, TABLE, REGRESSION]


PLAUSIBLE = [1, 2, 3, 5, 8, 16, 50, 0.1, 0.5, 0.01, 1e-4, "auto"]  # half the mutations: specs that may well run


def mutate(rng: random.Random, base: dict) -> dict:
    values, paths = _hostile()
    raw = copy.deepcopy(base)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(sorted(flatten(raw)) + paths)
        with contextlib.suppress(SpecError):
            set_path(raw, path, copy.deepcopy(rng.choice(PLAUSIBLE if rng.random() < 0.5 else values)))
    return raw


RUN_ONE = """
import json, sys
from deeppipe.spec.loader import load_spec
from deeppipe.stages import run_experiment
from deeppipe.errors import SpecError
from deeppipe.training.errors import TrainingError
try:
    run = run_experiment(load_spec(sys.argv[1]))
    ok = bool(run.trained.history) and bool(run.evaluation.scalars)
    print(json.dumps({"outcome": "ran" if ok else "wrong"}))
except (SpecError, TrainingError) as err:
    print(json.dumps({"outcome": "stopped", "why": str(err).splitlines()[0][:200]}))
"""


def spec_cases(n: int, seed: int, tmp: Path) -> Counter:
    """Validate ``n`` mutated specs in-process (with a watchdog); run each accepted one for an epoch."""
    rng, out = random.Random(seed), Counter()
    old = signal.signal(signal.SIGALRM, _alarm)
    import yaml

    for i in range(n):
        raw = mutate(rng, rng.choice(_bases()))
        f = tmp / f"fuzz_{i}.yml"
        f.write_text(yaml.safe_dump(raw, sort_keys=False))
        signal.alarm(HANG_S)
        try:
            rs = load_spec(f)
        except SpecError as err:
            out["refused" if err.file else "refused_without_file"] += 1
            continue
        except Hang:
            out["hang"] += 1
            continue
        except Exception as exc:  # a traceback a user would see
            out["traceback"] += 1
            print(f"  traceback validating {raw}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        finally:
            signal.alarm(0)
        out["accepted"] += 1
        spec = rs.raw
        spec.setdefault("train", {})["epochs"] = 1  # a step, not the hostile number of epochs
        spec["train"]["progress"] = False
        f.write_text(yaml.safe_dump(spec, sort_keys=False))
        try:
            proc = subprocess.run([sys.executable, "-c", RUN_ONE, str(f)], capture_output=True, text=True,
                                  timeout=300, cwd=tmp, env={**os.environ, "OMP_NUM_THREADS": "1"})
        except subprocess.TimeoutExpired:
            out["run_hang"] += 1
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        result = json.loads(lines[-1]) if lines else {"outcome": "traceback"}
        out[f"run_{result['outcome']}"] += 1
        if result["outcome"] != "ran":
            print(f"  accepted then {result['outcome']}: {raw} {result.get('why', proc.stderr[-300:])}", file=sys.stderr)
    signal.signal(signal.SIGALRM, old)
    return out


def data_cases(tmp: Path) -> Counter:
    from deeppipe.data.sources import load_source
    from tests.reliability.conftest import write_spec
    from tests.reliability.test_hostile_data import REFUSED, _spec

    out = Counter()
    for make, where, word in REFUSED:
        for on_error in ("raise", "skip"):
            folder = tmp / f"{make.__name__}_{on_error}"
            folder.mkdir()
            f = write_spec(folder, _spec(make(folder), on_error=on_error))
            try:
                rs = load_spec(f)
                samples = load_source(rs.spec.data.source, on_error=on_error, limit=rs.spec.data.limit)
            except SpecError as err:
                right = where in str(err) and word.lower() in str(err).lower()
                out["refused" if right or on_error == "skip" else "refused_unclear"] += 1
                continue
            except Exception as exc:
                out["traceback"] += 1
                print(f"  traceback reading {make.__name__} ({on_error}): {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            import numpy as np

            finite = np.isfinite(samples.x).all() and (not np.issubdtype(samples.y.dtype, np.floating)
                                                       or np.isfinite(samples.y).all())
            fine = on_error == "skip" and finite and (not samples.task.is_classification
                                                      or samples.task.num_classes == len(np.unique(samples.y)))
            out["read_after_dropping" if fine else "silently_wrong"] += 1
    return out


# --------------------------------------------------------------------------------------- kills
# inside each atomic write of a run (@N: the N-th such write; 6 epochs write 5 checkpoints, then
# the final one), then at a random moment (start-up, reading, training or evaluating)
KILL_AT = [".dataset.npz.", ".split.npz.", ".last.pt.@2", ".last.pt.@6", ".model.", ".history.json.", ".train.",
           ".metrics.json.", ".predictions.csv.", ".plots.", ".registry.json.", "random"]


def kill_cases(tmp: Path, targets: list[str], seed: int) -> Counter:
    from safetensors.torch import load_file

    from tests.reliability import conftest as rel

    out = Counter()
    spec = rel.tiny(epochs=6, deterministic=True)
    ref = rel.project(tmp / "reference", spec)
    assert rel.kedro(ref).returncode == 0, "the uninterrupted reference run failed"
    ref_w = load_file(str(ref / "data/06_models" / rel.NAME / "model/model.safetensors"))
    rng = random.Random(seed)
    for i, target in enumerate(targets):
        root = rel.project(tmp / f"kill_{i}", spec)
        if target == "random":
            victim = rel.spawn(root)
            time.sleep(rng.uniform(5, 25))
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait()
            killed = victim.returncode == -signal.SIGKILL
        else:
            killed = rel.kedro(root, fault=f"kill:{target}").returncode == -signal.SIGKILL
        out["kills"] += killed  # a random kill may come after the run ended: then it is a plain rerun
        rerun = rel.kedro(root)
        problems = []
        if rerun.returncode != 0:
            problems.append("rerun failed: " + (rerun.stdout + rerun.stderr)[-300:])
        statuses = [r.info.status for r in rel.runs(root)]
        if "RUNNING" in statuses:
            problems.append(f"MLflow runs left RUNNING: {statuses}")
        for r in rel.runs(root):
            s = rel.steps(root, r.info.run_id)
            if len(s) != len(set(s)):
                problems.append(f"epochs logged twice in {r.info.run_id}: {s}")
        if rel.leftovers(root):
            problems.append(f"leftovers: {rel.leftovers(root)}")
        try:
            w = load_file(str(root / "data/06_models" / rel.NAME / "model/model.safetensors"))
            metrics = json.loads((root / "data/08_reporting" / rel.NAME / "metrics.json").read_text())
            if w.keys() != ref_w.keys() or not all((w[k] == ref_w[k]).all() for k in w):
                problems.append("weights differ from the uninterrupted run")
                out["silently_wrong"] += 1
            if metrics["train"]["epochs_run"] != 6:
                problems.append(f"metrics say {metrics['train']['epochs_run']} epochs")
                out["silently_wrong"] += 1
        except (OSError, ValueError, KeyError) as exc:
            problems.append(f"artefact missing or corrupt: {exc}")
            out["data_lost"] += 1
        out["clean" if not problems else "problem"] += 1
        for p in problems:
            print(f"  kill at {target}: {p}", file=sys.stderr)
    return out


def concurrency_cases(tmp: Path, rounds: int) -> Counter:
    from tests.reliability import conftest as rel

    out = Counter()
    for i in range(rounds):
        root = rel.project(tmp / f"race_{i}", rel.tiny(epochs=30))
        a, b = rel.spawn(root), rel.spawn(root)
        codes = sorted([a.wait(600), b.wait(600)])
        ok = codes == [0, 3] and len(rel.runs(root)) == 1
        out["one_ran_one_refused" if ok else "both_ran_or_failed"] += 1
        if not ok:
            print(f"  race {i}: exit codes {codes}, {len(rel.runs(root))} MLflow runs", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 specs, 1 kill target, no race (tests; tests/reliability/test_run_isolation.py runs "
                    "the same race)")
    ap.add_argument("--specs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    n_specs = args.specs or (8 if args.quick else 400)
    targets = [".last.pt.@6"] if args.quick else KILL_AT
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "specs").mkdir()
        (tmp / "data").mkdir()
        parts = {"specs": spec_cases(n_specs, args.seed, tmp / "specs"), "data": data_cases(tmp / "data"),
                 "kills": kill_cases(tmp, targets, args.seed), "concurrency": concurrency_cases(tmp, 0 if args.quick else 2)}
    total = Counter()
    for c in parts.values():
        total.update(c)
    counts = {
        "cases_tried": n_specs + sum(parts["data"].values()) + len(targets) + sum(parts["concurrency"].values()),
        "clean_refusals": total["refused"] + total["one_ran_one_refused"],
        "tracebacks": total["traceback"] + total["run_traceback"] + total["refused_without_file"],
        "hangs": total["hang"] + total["run_hang"],
        "silently_wrong": total["silently_wrong"] + total["run_wrong"] + total["both_ran_or_failed"],
        "data_lost": total["data_lost"],
        "accepted_then_stopped": total["run_stopped"],
    }
    failures = counts["tracebacks"] + counts["hangs"] + counts["silently_wrong"] + counts["data_lost"]
    record = {
        "name": NAME, "value": failures, "unit": "failures (tracebacks + hangs + silently wrong + data lost)",
        "goal": "0", "baseline": "none: a count of failures, not a speed (goal 0)", "ratio": None, "counts": counts, "parts": {k: dict(v) for k, v in parts.items()},
        "machine": f"{platform.machine()} {os.cpu_count()} cpus", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick, "seed": args.seed, "seconds": round(time.perf_counter() - t0, 1),
    }
    write_result(record, args.out)
    for part, c in parts.items():
        print(f"{part}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    print(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))
    print(f"{NAME}: {failures} failures (goal 0)")


if __name__ == "__main__":
    main()
