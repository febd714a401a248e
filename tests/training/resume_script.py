"""Trains digits with checkpoints; run as a subprocess by test_checkpoint (it gets SIGKILLed).

usage: resume_script.py CHECKPOINT_DIR OUT_FILE [SLEEP_PER_EPOCH]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn

from deeppipe.data.batches import TensorBatches
from deeppipe.data.task import Task
from deeppipe.tracking.tracker import NullTracker
from deeppipe.training import fit


class SlowTracker(NullTracker):
    def __init__(self, pause: float) -> None:
        self.pause = pause

    def log_metrics(self, metrics, step=None) -> None:
        time.sleep(self.pause)


def main() -> None:
    torch.set_num_threads(1)
    ckpt_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(d.target)
    train = TensorBatches(x[:1200], y[:1200], 50, seed=5)
    val = TensorBatches(x[1200:], y[1200:], 600, shuffle=False)
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Dropout(0.3), nn.Linear(48, 10)
    )
    cfg = {
        "epochs": 8,
        "progress": False,
        "deterministic": True,
        "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.01},
        "schedule": {"name": "onecycle"},
        "mixup": {"alpha": 0.4},
        "early_stopping": {"patience": 20},
        "checkpoint": {"every": 1},
    }
    fit(
        model,
        train,
        val,
        cfg,
        Task("multiclass", 10),
        tracker=SlowTracker(pause),
        checkpoint_dir=ckpt_dir,
        seed=11,
        spec_hash="spec-abc",
    )
    torch.save(model.state_dict(), out)


if __name__ == "__main__":
    main()
