"""Model construction: how long build_model takes for every zoo model at its small input.

For each zoo model at its small input (32x32 for the image models that have a 32x32 variant;
AlexNet needs 63-67 pixels): the median wall time of several warm builds (YAML -> shape inference
on the meta device -> CPU tensors -> initialisation), split into the shape-inference part (a
``device="meta"`` build) and the rest, against an anchor that any construction has to pay: filling
the same number of parameters with random numbers (``torch.empty(n).uniform_()``).
  value = the slowest model's median build time (goal < 1 s for the 32x32 variants)
The first (cold) build in a fresh process is reported too: it includes PyTorch's one-time set-up
of meta-device kernels.

    .venv/bin/python benchmarks/model_build.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from _results import write_result  # benchmarks/_results.py (this folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
NAME, GOAL = "model_build", 1.0


def _head(info: dict) -> int | None:
    if info["task"] == "reconstruction":
        return None
    if info["task"] == "binary":
        return 1
    return 10 if info["task"] != "regression" else int(info["args"].get("num_outputs", 1))


def _time(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="three models, one round (tests)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)

    t0 = time.perf_counter()
    from deeppipe.models import build_model, zoo

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_model({"zoo": "resnet20"}, (3, 32, 32), 10)
    cold_s = time.perf_counter() - t0

    names = ["resnet20", "mlp", "lstm_classifier"] if args.quick else zoo.names()
    rounds = 1 if args.quick else args.rounds
    rows = []
    for name in names:
        info = zoo.info(name)
        shape, head = tuple(info["small_input"]), _head(info)
        spec = {"zoo": name}
        build_model(spec, shape, head)  # warm this model's layer types
        total = _time(
            lambda spec=spec, shape=shape, head=head: build_model(spec, shape, head), rounds
        )
        meta = _time(
            lambda spec=spec, shape=shape, head=head: build_model(spec, shape, head, device="meta"),
            rounds,
        )
        n = sum(p.numel() for p in build_model(spec, shape, head, device="meta").parameters())
        fill = _time(lambda n=n: torch.empty(n).uniform_(), rounds)
        rows.append(
            {
                "model": name,
                "input": list(shape),
                "params": n,
                "build_s": round(total, 4),
                "shape_inference_s": round(meta, 4),
                "materialise_and_init_s": round(max(0.0, total - meta), 4),
                "fill_params_s": round(fill, 4),
                "ratio_to_fill": round(total / fill, 2) if fill > 0 else None,
                "small_32x32": shape[-1] <= 32,
            }
        )
        print(
            f"{name:20s} {shape!s:14s} {n:>12,} params  build {total * 1000:7.1f} ms "
            f"(shapes {meta * 1000:6.1f} ms, fill-only anchor {fill * 1000:6.1f} ms)",
            file=sys.stderr,
        )
    small = [r for r in rows if r["small_32x32"]]
    worst = max(small or rows, key=lambda r: r["build_s"])
    record = {
        "name": NAME,
        "value": worst["build_s"],
        "unit": "s (slowest zoo model, median warm build at its small input)",
        "goal": f"< {GOAL} s for the 32x32 variants",
        "slowest": worst["model"],
        "baseline": "filling the same number of parameters with uniform random numbers",
        "ratio": worst["ratio_to_fill"],  # build time / fill-only time of the slowest model
        "machine": f"{platform.machine()} {platform.processor() or ''}"
        f" {os.cpu_count()} cpus, torch {torch.__version__}, 1 thread".strip(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "rounds": rounds,
        "import_deeppipe_models_s": round(import_s, 3),
        "first_build_in_process_s": round(cold_s, 3),
        "models": rows,
    }
    write_result(record, args.out)
    print(
        f"slowest: {worst['model']} {worst['build_s']:.3f} s (goal < {GOAL} s); first build in a fresh "
        f"process {cold_s:.2f} s; import deeppipe.models {import_s:.2f} s",
        file=sys.stderr,
    )
    print(f"{NAME}: {worst['build_s']:.3f} s, slowest {worst['model']} (goal < {GOAL} s)")


if __name__ == "__main__":
    main()
