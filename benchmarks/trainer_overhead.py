"""Training-engine overhead: deeppipe's fit() against a minimal hand-written PyTorch loop.

Same process, same data (in-memory TensorBatches), same model initialisation, same optimizer
and batch size; engine and loop run back to back in paired rounds (order alternating) and the
median over rounds is taken. The engine runs as users run it: progress bar on, a tracker
receiving per-epoch metrics, gradient-norm sampling on. Reported per model:
  ratio = hand-written epoch time / engine epoch time   (steady state: first epoch left out)
on two clocks: this thread's CPU time (torch runs on one thread, so it is the whole cost and is
not inflated by other processes on a shared machine: the headline figure) and wall-clock time.
Also: the time from calling fit() to its first step, the import time of the engine, and what
writing a checkpoint every epoch costs.

    .venv/bin/python benchmarks/trainer_overhead.py [--quick] [--rounds N] [--out DIR]
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deeppipe.data.batches import TensorBatches
from deeppipe.data.task import Task
from deeppipe.tracking.tracker import MemoryTracker
from deeppipe.training import fit

REPO = Path(__file__).resolve().parents[1]
FASHION = [
    REPO / "data" / "01_raw" / "fashion-mnist",
    REPO.parent / "shared" / "data" / "fashion-mnist",
]
NAME, GOAL = "trainer_overhead", 0.97


def digits_data() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.tensor(d.data / 16.0, dtype=torch.float32), torch.tensor(d.target)


def _idx(path: Path, count: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)[:count]


def fashion_data(count: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    for folder in FASHION:
        images = folder / "train-images-idx3-ubyte.gz"
        if images.exists():
            x = _idx(images, count).astype(np.float32)[:, None] / 255.0
            y = _idx(folder / "train-labels-idx1-ubyte.gz", count).astype(np.int64)
            return torch.from_numpy(x), torch.from_numpy(y)
    return None


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    )


def fashion_cnn() -> nn.Module:
    """conv32-pool-conv64-pool-fc, plain torch.nn."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 10),
    )


def now() -> tuple[float, float]:
    """(wall-clock, this thread's CPU time). With torch on one thread all the work of a step
    happens on this thread, so its CPU time equals wall time on an idle machine and, unlike
    wall time, is not inflated when other processes share the cores."""
    return time.perf_counter(), time.thread_time()


def hand_written(model: nn.Module, src: TensorBatches, epochs: int, lr: float) -> list:
    """The loop every PyTorch tutorial writes; returns the clocks at the end of each epoch."""
    ends = [now()]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        for xb, yb in src.epoch(epoch):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        ends.append(now())
    return ends


class FirstStep(nn.Module):
    """Wraps a model to record when the first training forward pass starts."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.first = inner, None

    def forward(self, x):
        if self.first is None:
            self.first = time.perf_counter()
        return self.inner(x)


class Clock(MemoryTracker):
    """A tracker that also notes when each epoch's metrics arrive (= the epoch is over)."""

    def __init__(self) -> None:
        super().__init__()
        self.ends: list = []

    def log_metrics(self, metrics, step=None) -> None:
        super().log_metrics(metrics, step)
        self.ends.append(now())


def engine(
    model: nn.Module,
    src: TensorBatches,
    epochs: int,
    lr: float,
    ckpt: Path | None = None,
    first_step: bool = False,
) -> tuple[list, float | None]:
    """Epoch-end clocks of fit() (progress bar and tracking on); with ``first_step`` the model
    is wrapped to time fit()'s set-up (the wrapper's extra call is kept out of throughput runs)."""
    clock = Clock()
    wrapped = FirstStep(model) if first_step else model
    cfg = {
        "epochs": epochs,
        "batch_size": src.batch_size,
        "progress": True,
        "optimizer": {"name": "adam", "lr": lr},
        "device": "cpu",
    }
    t0 = now()
    fit(wrapped, src, None, cfg, Task("multiclass", 10), tracker=clock, checkpoint_dir=ckpt)
    return [t0, *clock.ends], (wrapped.first - t0[0]) if first_step else None


def _steady(ends: list, which: int) -> float:
    """Mean epoch time on one clock, the first epoch (set-up, warm-up) left out."""
    if len(ends) <= 2:
        return ends[-1][which] - ends[0][which]
    return (ends[-1][which] - ends[1][which]) / (len(ends) - 2)


def measure(name: str, make, x, y, batch: int, epochs: int, rounds: int) -> dict:
    """Paired rounds: engine and hand-written loop back to back, order alternating; per clock
    the figure is the median over rounds of (hand-written epoch time / engine epoch time)."""
    src = TensorBatches(x, y, batch, seed=0)
    torch.manual_seed(0)
    init = make()
    rows, first = [], []
    for r in range(rounds + 1):  # round 0 warms caches and allocators, not counted
        order = ("engine", "hand") if r % 2 == 0 else ("hand", "engine")
        got = {}
        for who in order:
            model = copy.deepcopy(init)
            if who == "hand":
                got[who] = hand_written(model, src, epochs, 1e-3)
            else:
                got[who], _ = engine(model, src, epochs, 1e-3)
        if r:
            rows.append(
                {
                    clock: (_steady(got["engine"], i), _steady(got["hand"], i))
                    for i, clock in enumerate(("wall", "cpu"))
                }
            )
            first.append(engine(copy.deepcopy(init), src, 1, 1e-3, first_step=True)[1])
    out = {
        "model": name,
        "samples": len(x),
        "batch_size": batch,
        "epochs": epochs,
        "fit_to_first_step_s": statistics.median(first),
    }
    for clock in ("wall", "cpu"):
        eng = statistics.median(row[clock][0] for row in rows)
        hand = statistics.median(row[clock][1] for row in rows)
        out[clock] = {
            "ratio": statistics.median(row[clock][1] / row[clock][0] for row in rows),
            "engine_samples_per_s": len(x) / eng,
            "hand_samples_per_s": len(x) / hand,
            "per_epoch_overhead_s": statistics.median(
                row[clock][0] - row[clock][1] for row in rows
            ),
            "round_ratios": [round(row[clock][1] / row[clock][0], 4) for row in rows],
        }
    out["ratio"] = out["cpu"]["ratio"]
    return out


def checkpoint_cost(x, y) -> float:
    """Seconds per epoch that writing a checkpoint every epoch adds (MLP on digits)."""
    src = TensorBatches(x, y, 64, seed=0)
    torch.manual_seed(0)
    init = mlp()
    with tempfile.TemporaryDirectory() as tmp:
        with_ckpt = statistics.median(
            _steady(engine(copy.deepcopy(init), src, 6, 1e-3, Path(tmp) / f"c{i}")[0], 0)
            for i in range(3)
        )
    without = statistics.median(
        _steady(engine(copy.deepcopy(init), src, 6, 1e-3)[0], 0) for _ in range(3)
    )
    return max(0.0, with_ckpt - without)


COLD = """
import time
t0 = time.perf_counter()
import torch
from torch import nn
from deeppipe.data.batches import TensorBatches
from deeppipe.data.task import Task
from deeppipe.training import fit
t1 = time.perf_counter()
torch.set_num_threads(1)
x, y = torch.rand(512, 64), torch.randint(0, 10, (512,))
model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
first = []
model.register_forward_pre_hook(lambda m, a: first.append(time.perf_counter()) if not first else None)
t2 = time.perf_counter()
fit(model, TensorBatches(x, y, 64), None, {"epochs": 1, "progress": False}, Task("multiclass", 10))
print(t1 - t0, first[0] - t2)
"""


def cold_start() -> tuple[float, float]:
    """In a fresh interpreter: seconds to import the engine (torch included) and seconds from
    calling fit() to the first training step (the first torch optimizer imports torch._dynamo)."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, check=True)
    imp, first = out.stdout.strip().splitlines()[-1].split()
    return float(imp), float(first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (tests)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rounds = 1 if args.quick else args.rounds
    x, y = digits_data()
    results = [measure("mlp_digits", mlp, x, y, 64, 2 if args.quick else 20, rounds)]
    fashion = fashion_data(128 if args.quick else 1536)
    if fashion is not None:
        results.append(
            measure("cnn_fashion_mnist", fashion_cnn, *fashion, 128, 2 if args.quick else 3, rounds)
        )
    ckpt_s = 0.0 if args.quick else checkpoint_cost(x, y)
    import_s, cold_first = (None, None) if args.quick else cold_start()
    value = min(r["ratio"] for r in results)
    wall = min(r["wall"]["ratio"] for r in results)
    record = {
        "name": NAME,
        "value": round(value, 4),
        "unit": "x hand-written loop throughput",
        "goal": f">= {GOAL}",
        "baseline": "minimal hand-written PyTorch loop, same process",
        "ratio": round(value, 4),
        "clock": "thread CPU time (torch on 1 thread); wall-clock ratio in wall_ratio",
        "wall_ratio": round(wall, 4),
        "machine": f"{platform.machine()} {platform.processor() or ''}"
        f" {os.cpu_count()} cpus, torch {torch.__version__}, 1 thread".strip(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "rounds": rounds,
        "models": results,
        "checkpoint_per_epoch_s": ckpt_s,
        "import_deeppipe_training_s": import_s,
        "cold_fit_to_first_step_s": cold_first,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.out, prefix=f".{NAME}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, args.out / f"{NAME}.json")
    for r in results:
        for clock in ("cpu", "wall"):
            c = r[clock]
            print(
                f"{r['model']} [{clock} time]: engine {c['engine_samples_per_s']:.0f} samples/s, "
                f"hand-written {c['hand_samples_per_s']:.0f} samples/s, ratio {c['ratio']:.3f}, "
                f"per-epoch overhead {c['per_epoch_overhead_s'] * 1000:.2f} ms",
                file=sys.stderr,
            )
        print(
            f"{r['model']}: fit() call to first training step "
            f"{r['fit_to_first_step_s'] * 1000:.1f} ms",
            file=sys.stderr,
        )
    print(
        f"checkpoint every epoch: {ckpt_s * 1000:.1f} ms per epoch; import deeppipe.training: "
        f"{import_s or 0:.2f} s; fit() to first step in a fresh process: {cold_first or 0:.2f} s",
        file=sys.stderr,
    )
    print(f"{NAME}: {value:.3f} x (goal >= {GOAL})")


if __name__ == "__main__":
    main()
