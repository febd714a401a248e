"""Training-engine overhead: deeppipe's fit() against a minimal hand-written PyTorch loop.

Same process, same data (in-memory TensorBatches), same model initialisation, same optimizer
and batch size; runs interleaved (the order alternates every round) and the median is taken.
The engine runs as users run it: progress bar on, a tracker receiving per-epoch metrics,
gradient-norm sampling on. Reported per model:
  ratio = hand-written epoch time / engine epoch time  (steady state: first epoch left out;
          median over paired rounds)                  (goal >= 0.97)
plus the time from calling fit() to its first training step, and the per-epoch overhead.

    .venv/bin/python benchmarks/trainer_overhead.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import copy
import gzip
import itertools
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


def hand_written(model: nn.Module, src: TensorBatches, epochs: int, lr: float) -> list[float]:
    """The loop every PyTorch tutorial writes; returns the time at the end of each epoch."""
    ends = [time.perf_counter()]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        for xb, yb in src.epoch(epoch):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        ends.append(time.perf_counter())
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
        self.ends: list[float] = []

    def log_metrics(self, metrics, step=None) -> None:
        super().log_metrics(metrics, step)
        self.ends.append(time.perf_counter())


def engine(
    model: nn.Module, src: TensorBatches, epochs: int, lr: float, ckpt: Path | None = None
) -> tuple[list[float], float]:
    """Epoch end times of fit() (progress bar and tracking on) and seconds to its first step."""
    wrapped, clock = FirstStep(model), Clock()
    cfg = {
        "epochs": epochs,
        "batch_size": src.batch_size,
        "progress": True,
        "optimizer": {"name": "adam", "lr": lr},
        "device": "cpu",
    }
    t0 = time.perf_counter()
    fit(wrapped, src, None, cfg, Task("multiclass", 10), tracker=clock, checkpoint_dir=ckpt)
    return [t0, *clock.ends], wrapped.first - t0


def _steady(ends: list[float]) -> float:
    """Median epoch period, the first epoch (warm-up, setup) left out."""
    periods = [b - a for a, b in itertools.pairwise(ends)]
    return statistics.median(periods[1:] if len(periods) > 1 else periods)


def measure(name: str, make, x, y, batch: int, epochs: int, rounds: int) -> dict:
    """Paired rounds: engine and hand-written loop back to back (order alternating), so load
    from other processes hits both alike; the figure is the median of the per-round ratios."""
    src = TensorBatches(x, y, batch, seed=0)
    torch.manual_seed(0)
    init = make()
    ratios, whole, first, eng_s, hand_s = [], [], [], [], []
    for r in range(rounds + 1):  # round 0 warms caches and allocators, not counted
        order = ("engine", "hand") if r % 2 == 0 else ("hand", "engine")
        got = {}
        for who in order:
            model = copy.deepcopy(init)
            if who == "hand":
                got[who] = hand_written(model, src, epochs, 1e-3)
            else:
                got[who], first_step = engine(model, src, epochs, 1e-3)
        if r:
            e, h = _steady(got["engine"]), _steady(got["hand"])
            ratios.append(h / e)
            eng_s.append(e)
            hand_s.append(h)
            whole.append(
                (got["hand"][-1] - got["hand"][0]) / (got["engine"][-1] - got["engine"][0])
            )
            first.append(first_step)
    e, h = statistics.median(eng_s), statistics.median(hand_s)
    return {
        "model": name,
        "samples": len(x),
        "batch_size": batch,
        "epochs": epochs,
        "engine_samples_per_s": len(x) / e,
        "hand_samples_per_s": len(x) / h,
        "ratio": statistics.median(ratios),
        "ratio_whole_fit": statistics.median(whole),
        "per_epoch_overhead_s": statistics.median([a - b for a, b in zip(eng_s, hand_s)]),
        "fit_to_first_step_s": statistics.median(first),
        "round_ratios": ratios,
    }


def checkpoint_cost(x, y) -> float:
    """Seconds per epoch that writing a checkpoint every epoch adds (MLP on digits)."""
    src = TensorBatches(x, y, 64, seed=0)
    torch.manual_seed(0)
    init = mlp()
    with tempfile.TemporaryDirectory() as tmp:
        with_ckpt = statistics.median(
            _steady(engine(copy.deepcopy(init), src, 6, 1e-3, Path(tmp) / f"c{i}")[0])
            for i in range(3)
        )
    without = statistics.median(
        _steady(engine(copy.deepcopy(init), src, 6, 1e-3)[0]) for _ in range(3)
    )
    return max(0.0, with_ckpt - without)


def import_time() -> float:
    """Seconds a fresh interpreter needs to import the engine (part of time to first step)."""
    import subprocess

    code = (
        "import time; t = time.perf_counter(); import deeppipe.training; "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (tests)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rounds = 1 if args.quick else args.rounds
    x, y = digits_data()
    results = [measure("mlp_digits", mlp, x, y, 64, 2 if args.quick else 8, rounds)]
    fashion = fashion_data(256 if args.quick else 1536)
    if fashion is not None:
        results.append(
            measure("cnn_fashion_mnist", fashion_cnn, *fashion, 128, 2 if args.quick else 3, rounds)
        )
    ckpt_s = 0.0 if args.quick else checkpoint_cost(x, y)
    import_s = import_time()
    value = min(r["ratio"] for r in results)
    record = {
        "name": NAME,
        "value": round(value, 4),
        "unit": "x hand-written loop throughput",
        "goal": f">= {GOAL}",
        "baseline": "minimal hand-written PyTorch loop, same process",
        "ratio": round(value, 4),
        "machine": f"{platform.machine()} {platform.processor() or ''}"
        f" {os.cpu_count()} cpus, torch {torch.__version__}, 1 thread".strip(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "rounds": rounds,
        "models": results,
        "checkpoint_per_epoch_s": ckpt_s,
        "import_deeppipe_training_s": import_s,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.out, prefix=f".{NAME}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, args.out / f"{NAME}.json")
    for r in results:
        print(
            f"{r['model']}: engine {r['engine_samples_per_s']:.0f} samples/s, hand-written "
            f"{r['hand_samples_per_s']:.0f} samples/s, ratio {r['ratio']:.3f}, per-epoch "
            f"overhead {r['per_epoch_overhead_s'] * 1000:.1f} ms, fit() to first step "
            f"{r['fit_to_first_step_s'] * 1000:.1f} ms",
            file=sys.stderr,
        )
    print(
        f"checkpoint every epoch: {ckpt_s * 1000:.1f} ms per epoch; import deeppipe.training: "
        f"{import_s:.2f} s",
        file=sys.stderr,
    )
    print(f"{NAME}: {value:.3f} x (goal >= {GOAL})")


if __name__ == "__main__":
    main()
