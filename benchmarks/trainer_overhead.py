"""Training-engine overhead: deeppipe's fit() against a minimal hand-written PyTorch loop and
against PyTorch Lightning's Trainer.

Same process, same data, same model initialisation, optimizer and batch size, on three models:
an MLP on digits, the Fashion-MNIST CNN and ResNet-20 at 32x32 (deeppipe's zoo network; random
3x32x32 images: throughput does not depend on the pixels). The contenders are interleaved epoch
by epoch: the tracker that fit() reports to runs one epoch of the hand-written loop and then one
epoch of Lightning (each on its own copy of the model) each time fit() finishes an epoch, so all
see the same machine state, warm caches and the same load from neighbours. The hand-written
loop and fit() slice in-memory TensorBatches; Lightning gets what its users write, a DataLoader
over a TensorDataset (shuffled, no workers), logger and checkpointing off, its progress bar on
(to stderr), and its epoch time is taken between its on_train_epoch_start and on_train_epoch_end
hooks (a fresh Trainer per epoch, so the Trainer's set-up is not counted; the module keeps its
optimizer and weights). Lightning is a benchmark-only dependency (benchmarks/requirements.lock,
installed by `make bench`): without it that baseline is skipped and the output says so.
The engine runs as users run it: progress bar on, a tracker receiving per-epoch metrics,
gradient-norm sampling on; its epoch time covers everything from one epoch's end to the next
(training, progress bar, metrics, logging). Reported per model:

  ratio = median over epochs of (hand-written epoch time / engine epoch time)   goal >= 0.97
  lightning ratio = median over epochs of (Lightning epoch time / engine epoch time)  (> 1: faster)

on two clocks: this thread's CPU time (torch runs on one thread, so it is the whole cost and is
not inflated by other processes on a shared machine: the headline figure) and wall-clock time.
The first epoch (set-up, warm-up) is left out. Also: the time from calling fit() to its first
step (warm, and in a fresh interpreter), the engine's import time and what writing a
checkpoint every epoch costs.

    .venv/bin/python benchmarks/trainer_overhead.py [--quick] [--rounds N] [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import gzip
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from _results import write_result  # benchmarks/_results.py (this folder is on sys.path)
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
NAME, GOAL, LR = "trainer_overhead", 0.97, 1e-3
CLOCKS = ("cpu", "wall")


def now() -> dict[str, float]:
    """This thread's CPU time and wall-clock time."""
    return {"cpu": time.thread_time(), "wall": time.perf_counter()}


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


def resnet20() -> nn.Module:
    """deeppipe's zoo ResNet-20 (CIFAR layout) at 3x32x32: a plain nn.Module for all three."""
    from deeppipe.models import build_model

    return build_model({"zoo": "resnet20"}, (3, 32, 32), 10)


def cifar_like(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(count, 3, 32, 32, generator=gen), torch.randint(0, 10, (count,), generator=gen)


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


class HandWritten:
    """The loop every PyTorch tutorial writes, one epoch per call."""

    def __init__(self, model: nn.Module, src: TensorBatches) -> None:
        self.model, self.src = model, src
        self.opt = torch.optim.Adam(model.parameters(), lr=LR)
        self.loss_fn = nn.CrossEntropyLoss()

    def epoch(self, epoch: int) -> None:
        model, opt, loss_fn = self.model, self.opt, self.loss_fn
        model.train()
        for xb, yb in self.src.epoch(epoch):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()


def lightning_missing() -> str | None:
    """Why the Lightning baseline cannot run here, or None."""
    try:
        import pytorch_lightning  # noqa: F401
    except ImportError:
        return "pytorch_lightning is not installed (make bench installs benchmarks/requirements.lock)"
    return None


class LightningBaseline:
    """PyTorch Lightning's Trainer on the same model, one epoch per call (see the docstring)."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> None:
        import pytorch_lightning as pl
        from torch.utils.data import DataLoader, TensorDataset

        for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=r"(pytorch_)?lightning.*")
        gen = torch.Generator().manual_seed(0)
        self.pl = pl
        self.loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, generator=gen)
        self.module, self.times = _lightning_module(pl, model), {}

    def epoch(self, epoch: int) -> dict[str, float]:
        pl, times = self.pl, self.times

        class Clock(pl.Callback):
            def on_train_epoch_start(self, trainer, module) -> None:
                times["start"] = now()

            def on_train_epoch_end(self, trainer, module) -> None:
                times["end"] = now()

        trainer = pl.Trainer(
            max_epochs=1,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            callbacks=[Clock()],
        )
        with contextlib.redirect_stdout(sys.stderr):  # its progress bar: stdout ends with the figure
            trainer.fit(self.module, train_dataloaders=self.loader)
        return {c: times["end"][c] - times["start"][c] for c in CLOCKS}


def _lightning_module(pl, model: nn.Module):
    """The LightningModule every tutorial writes; it keeps one optimizer across Trainers."""

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net, self.loss_fn = model, nn.CrossEntropyLoss()
            self.opt = torch.optim.Adam(model.parameters(), lr=LR)

        def training_step(self, batch, batch_idx):
            xb, yb = batch
            return self.loss_fn(self.net(xb), yb)

        def configure_optimizers(self):
            return self.opt

    return Module()


class Interleave(MemoryTracker):
    """fit()'s tracker: times fit()'s epoch, then runs and times one hand-written epoch and one
    Lightning epoch."""

    def __init__(self, hand: HandWritten, light: LightningBaseline | None) -> None:
        super().__init__()
        self.hand, self.light, self.pairs = hand, light, []
        self.resume = now()

    def log_metrics(self, metrics, step=None) -> None:
        super().log_metrics(metrics, step)
        t1 = now()
        gc.collect()  # each contender starts with no garbage of another's (Lightning makes plenty)
        h0 = now()
        self.hand.epoch(int(step))
        t2 = now()
        gc.collect()
        light = None if self.light is None else self.light.epoch(int(step))
        engine = {c: t1[c] - self.resume[c] for c in CLOCKS}
        hand = {c: t2[c] - h0[c] for c in CLOCKS}
        self.pairs.append((engine, hand, light))
        gc.collect()
        self.resume = now()


def engine_config(epochs: int, batch: int) -> dict:
    return {
        "epochs": epochs,
        "batch_size": batch,
        "progress": True,
        "device": "cpu",
        "optimizer": {"name": "adam", "lr": LR},
    }


def measure(name: str, make, x, y, batch: int, epochs: int, rounds: int, lightning: bool) -> dict:
    src = TensorBatches(x, y, batch, seed=0)
    torch.manual_seed(0)
    init = make()
    pairs = []
    for _ in range(rounds):
        light = LightningBaseline(copy.deepcopy(init), x, y, batch) if lightning else None
        tracker = Interleave(HandWritten(copy.deepcopy(init), src), light)
        tracker.resume = now()
        fit(
            copy.deepcopy(init),
            src,
            None,
            engine_config(epochs, batch),
            Task("multiclass", 10),
            tracker=tracker,
        )
        pairs += tracker.pairs[1:]  # the first epoch carries set-up and warm-up
    out = {
        "model": name,
        "samples": len(x),
        "batch_size": batch,
        "epochs": epochs,
        "rounds": rounds,
        "fit_to_first_step_s": first_step(init, src),
    }
    for c in CLOCKS:
        eng = statistics.median(e[c] for e, _, _ in pairs)
        hand = statistics.median(h[c] for _, h, _ in pairs)
        out[c] = {
            "ratio": statistics.median(h[c] / e[c] for e, h, _ in pairs),
            "engine_samples_per_s": len(x) / eng,
            "hand_samples_per_s": len(x) / hand,
            "per_epoch_overhead_s": statistics.median(e[c] - h[c] for e, h, _ in pairs),
            "epoch_pairs_compared": len(pairs),
        }
        if lightning:
            out[c] |= {
                "lightning_ratio": statistics.median(li[c] / e[c] for e, _, li in pairs),
                "lightning_samples_per_s": len(x) / statistics.median(li[c] for *_, li in pairs),
                "lightning_vs_hand": statistics.median(h[c] / li[c] for _, h, li in pairs),
            }
    out["ratio"] = out["cpu"]["ratio"]
    out["lightning_ratio"] = out["cpu"].get("lightning_ratio")
    return out


class FirstStep(nn.Module):
    """Wraps a model to record when the first training forward pass starts."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.first = inner, None

    def forward(self, x):
        if self.first is None:
            self.first = time.perf_counter()
        return self.inner(x)


def first_step(init: nn.Module, src: TensorBatches) -> float:
    """Seconds from calling fit() to its first training step (warm process), median of 3."""
    times = []
    for _ in range(3):
        model = FirstStep(copy.deepcopy(init))
        t0 = time.perf_counter()
        fit(
            model,
            src,
            None,
            {**engine_config(1, src.batch_size), "progress": False},
            Task("multiclass", 10),
        )
        times.append(model.first - t0)
    return statistics.median(times)


def checkpoint_cost(x, y) -> float:
    """Wall seconds per epoch that writing a checkpoint every epoch adds (MLP on digits)."""
    src = TensorBatches(x, y, 64, seed=0)
    torch.manual_seed(0)
    init = mlp()

    def per_epoch(ckpt: Path | None) -> float:
        t0 = time.perf_counter()
        fit(
            copy.deepcopy(init),
            src,
            None,
            {**engine_config(6, 64), "progress": False},
            Task("multiclass", 10),
            checkpoint_dir=ckpt,
        )
        return (time.perf_counter() - t0) / 6

    with tempfile.TemporaryDirectory() as tmp:
        with_ckpt = statistics.median(per_epoch(Path(tmp) / f"c{i}") for i in range(3))
    without = statistics.median(per_epoch(None) for _ in range(3))
    return max(0.0, with_ckpt - without)


def mlflow_cost() -> float | None:
    """Seconds one epoch's log_metrics call costs with deeppipe's MLflow tracker (one batched
    call of the ~9 per-epoch metrics to a local SQLite store, as `kedro run` uses)."""
    try:
        import mlflow

        from deeppipe.tracking.mlflow_tracker import MlflowTracker
    except ImportError:
        return None
    metrics = {
        "train/loss": 0.5,
        "val/loss": 0.6,
        "val/accuracy": 0.9,
        "lr": 1e-3,
        "grad_norm": 1.0,
        "weight_norm": 10.0,
        "epoch_time_s": 0.04,
        "samples_per_s": 4e4,
    }
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
        try:
            with mlflow.start_run() as run:
                tracker = MlflowTracker(run.info.run_id)
                tracker.log_metrics(metrics, step=0)  # creates tables, warms the connection
                times = []
                for step in range(1, 21):
                    t0 = time.perf_counter()
                    tracker.log_metrics(metrics, step=step)
                    times.append(time.perf_counter() - t0)
        finally:
            mlflow.set_tracking_uri("")
    return statistics.median(times)


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
    """In a fresh interpreter: seconds to import the engine (torch included) and from calling
    fit() to the first training step (the first torch optimizer imports torch._dynamo, for a
    hand-written loop just the same)."""
    out = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, check=True)
    imp, first = out.stdout.strip().splitlines()[-1].split()
    return float(imp), float(first)


def write_record(record: dict, out_dir: Path) -> None:
    write_result(record, out_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (tests)")
    parser.add_argument("--rounds", type=int, default=3, help="fit() runs per model")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rounds = 1 if args.quick else args.rounds
    missing = lightning_missing()
    if missing:
        print(f"Lightning baseline skipped: {missing}", file=sys.stderr)
    pl = missing is None
    x, y = digits_data()
    results = [measure("mlp_digits", mlp, x, y, 64, 3 if args.quick else 30, rounds, pl)]
    fashion = fashion_data(128 if args.quick else 2048)
    if fashion is not None:
        epochs = 3 if args.quick else 8
        results.append(measure("cnn_fashion_mnist", fashion_cnn, *fashion, 128, epochs, rounds, pl))
    else:
        print(f"cnn_fashion_mnist skipped: no Fashion-MNIST under {FASHION}", file=sys.stderr)
    cifar = cifar_like(64 if args.quick else 1024)
    results.append(measure("resnet20_32x32", resnet20, *cifar, 64, 2 if args.quick else 5, rounds, pl))
    ckpt_s = None if args.quick else checkpoint_cost(x, y)
    import_s, cold_first = (None, None) if args.quick else cold_start()
    tracking_s = None if args.quick else mlflow_cost()
    value = min(r["ratio"] for r in results)
    record = {
        "name": NAME,
        "value": round(value, 4),
        "unit": "x hand-written loop throughput",
        "goal": f">= {GOAL}",
        "baseline": "minimal hand-written PyTorch loop, same process, interleaved epoch by epoch",
        "ratio": round(value, 4),
        "lightning_ratio": None if not pl else round(min(r["lightning_ratio"] for r in results), 4),
        "lightning": "PyTorch Lightning Trainer, DataLoader over a TensorDataset, logger and "
        "checkpointing off; ratio = Lightning epoch time / engine epoch time"
        if pl
        else f"skipped: {missing}",
        "clock": "thread CPU time, torch on 1 thread (wall-clock ratio in wall_ratio)",
        "wall_ratio": round(min(r["wall"]["ratio"] for r in results), 4),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__}, "
        f"1 thread, load average {os.getloadavg()[0]:.1f}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "models": results,
        "checkpoint_per_epoch_s": ckpt_s,
        "import_deeppipe_training_s": import_s,
        "cold_fit_to_first_step_s": cold_first,
        "mlflow_log_metrics_per_epoch_s": tracking_s,
    }
    write_record(record, args.out)
    for r in results:
        for c in CLOCKS:
            m = r[c]
            print(
                f"{r['model']} [{c}]: engine {m['engine_samples_per_s']:.0f} samples/s, "
                f"hand-written {m['hand_samples_per_s']:.0f} samples/s, ratio {m['ratio']:.3f}, "
                f"per-epoch overhead {m['per_epoch_overhead_s'] * 1000:.2f} ms "
                f"({m['epoch_pairs_compared']} epoch pairs)",
                file=sys.stderr,
            )
            if "lightning_ratio" in m:
                print(
                    f"{r['model']} [{c}]: Lightning {m['lightning_samples_per_s']:.0f} samples/s "
                    f"({m['lightning_vs_hand']:.3f} x hand-written); engine / Lightning "
                    f"{m['lightning_ratio']:.3f}",
                    file=sys.stderr,
                )
        print(
            f"{r['model']}: fit() to first step {r['fit_to_first_step_s'] * 1000:.1f} ms",
            file=sys.stderr,
        )
    if not args.quick:
        print(
            f"checkpoint every epoch: {ckpt_s * 1000:.1f} ms per epoch; import "
            f"deeppipe.training: {import_s:.2f} s; fit() to first step in a fresh "
            f"process: {cold_first:.2f} s; MLflow logging per epoch: "
            f"{(tracking_s or 0) * 1000:.1f} ms",
            file=sys.stderr,
        )
    versus = "" if not pl else f"; {record['lightning_ratio']:.3f} x Lightning's Trainer"
    print(f"{NAME}: {value:.3f} x (goal >= {GOAL}){versus}")


if __name__ == "__main__":
    main()
