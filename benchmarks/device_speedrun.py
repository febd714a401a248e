"""The GPU fast path against a hand-written on-device loop: pipelines/cifar10_speedrun.yml trained by
deeppipe's stage functions, next to the loop an airbench-style speed run writes by hand (issue 14,
item 4). Only on a CUDA device: without one the full run says it is skipped.

Both contenders train the spec's network (built by deeppipe's builder from the same `model:`
section, the same initial weights) on the same images held on the GPU as uint8, for the spec's
epochs, and score the official test split with test-time flips:

- deeppipe: ``fit_experiment`` + the TTA predictor, as `kedro run` calls them, with the engine's
  defaults (``train.precision/channels_last/compile: auto``: bf16, NHWC, torch.compile on CUDA;
  fused SGD), the declared flip + pad-and-crop on whole batches on the device, one-cycle Nesterov SGD.
- hand-written: the same recipe in ~40 lines of torch: per-batch flips and random translations by
  indexing, standardisation, bf16 autocast, channels_last, torch.compile, fused SGD, OneCycleLR,
  label smoothing, flipped-view averaging at test time.

  value = deeppipe's seconds (training + test-time-flip evaluation) / the hand-written loop's,
  median over interleaved rounds; goal <= 1.5. Also each side's test accuracy and images/s.

Data, first found: CIFAR-10 as the recipe's image folder (data/01_raw/cifar10/{train,test}/<class>/),
else Fashion-MNIST's IDX files (data/01_raw/fashion-mnist or ../shared/data/fashion-mnist; 1x28x28,
the network's input sizes are inferred). `--quick` (tests, any device): 128 generated 1x32x32
images, one epoch, fp32 eager on the CPU: only shows both paths run.

    .venv/bin/python benchmarks/device_speedrun.py [--quick] [--rounds N] [--epochs E] [--out DIR]
"""

from __future__ import annotations

import argparse
import copy
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
import torch.nn.functional as F
import yaml
from _results import write_result  # benchmarks/_results.py (this folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
NAME, GOAL = "device_speedrun", 1.5
CIFAR = REPO / "data" / "01_raw" / "cifar10"
FASHION = [REPO / "data" / "01_raw" / "fashion-mnist", REPO.parent / "shared" / "data" / "fashion-mnist"]


def source(quick: bool, tmp: Path) -> tuple[dict, str]:
    """The spec's data.source for the data found (generated IDX files for --quick)."""
    if quick:
        rng = np.random.default_rng(0)
        for stem, n in (("train", 128), ("t10k", 64)):
            y = rng.integers(0, 10, n)
            x = rng.integers(0, 256, (n, 32, 32)).astype(np.uint8)
            x[:, :, :16] //= (1 + y[:, None, None] % 3).astype(np.uint8)  # something to learn
            _idx(tmp / f"{stem}-images-idx3-ubyte", x)
            _idx(tmp / f"{stem}-labels-idx1-ubyte", y.astype(np.uint8))
        return {"type": "idx", "path": str(tmp)}, "generated 32x32 (quick)"
    if (CIFAR / "train").is_dir() and (CIFAR / "test").is_dir():
        return {"type": "image_folder", "path": str(CIFAR), "size": [32, 32], "channels": 3}, "CIFAR-10"
    found = next((d for d in FASHION if (d / "train-images-idx3-ubyte.gz").exists()), None)
    if found is None:
        raise SystemExit(f"{NAME}: skipped (neither CIFAR-10 at {CIFAR} nor Fashion-MNIST found)")
    return {"type": "idx", "path": str(found)}, "Fashion-MNIST"


def _idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + arr.tobytes())


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class HandWritten:
    """The speed-run loop by hand, on tensors resident on the device."""

    def __init__(self, spec, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> None:
        self.spec, self.device, self.fast = spec, device, device.type == "cuda"
        self.x, self.y = x.to(device), y.to(device)  # uint8 (N, C, H, W), int64
        xf = self.x.float() / 255
        self.mean = xf.mean(dim=(0, 2, 3), keepdim=True)
        self.std = xf.std(dim=(0, 2, 3), keepdim=True)
        self.model = net.to(device)
        if self.fast:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net = torch.compile(self.model) if self.fast else self.model

    def _inputs(self, xb: torch.Tensor) -> torch.Tensor:
        x = ((xb.float() / 255) - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.fast else x

    def _augment(self, xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = xb.shape
        flip = torch.rand(n, device=xb.device, generator=gen) < 0.5
        xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
        pad = F.pad(xb, (2, 2, 2, 2))
        dy = torch.randint(0, 5, (n,), device=xb.device, generator=gen)
        dx = torch.randint(0, 5, (n,), device=xb.device, generator=gen)
        rows = (dy[:, None] + torch.arange(h, device=xb.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=xb.device))[:, None, None, :]
        return pad[torch.arange(n, device=xb.device)[:, None, None, None],
                   torch.arange(xb.shape[1], device=xb.device)[None, :, None, None], rows, cols]

    def train(self, epochs: int) -> None:
        t, opt_cfg = self.spec.train, self.spec.train.optimizer
        extra = opt_cfg.kwargs()
        opt = torch.optim.SGD(self.model.parameters(), lr=opt_cfg.lr, momentum=extra["momentum"], nesterov=True,
                              weight_decay=opt_cfg.weight_decay, fused=self.fast or None)
        batch, n = t.batch_size, len(self.x)
        steps = epochs * ((n + batch - 1) // batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=opt_cfg.lr, total_steps=steps, pct_start=0.23)
        gen = torch.Generator(device=self.device).manual_seed(0)
        smoothing = self.spec.train.loss.kwargs().get("label_smoothing", 0.0)
        self.model.train()
        for _ in range(epochs):
            order = torch.randperm(n, device=self.device, generator=gen)
            for i in range(0, n, batch):
                idx = order[i:i + batch]
                xb = self._inputs(self._augment(self.x.index_select(0, idx), gen))
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.fast):
                    loss = F.cross_entropy(self.net(xb), self.y.index_select(0, idx), label_smoothing=smoothing)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                sched.step()

    @torch.inference_mode()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.model.eval()
        x, y, hits = x.to(self.device), y.to(self.device), 0
        for i in range(0, len(x), 2000):
            xb = self._inputs(x[i:i + 2000])
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.fast):
                logits = self.net(xb).float().softmax(1) + self.net(xb.flip(-1)).float().softmax(1)
            hits += int((logits.argmax(1) == y[i:i + 2000]).sum())
        return hits / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny generated data, one epoch, any device")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    if not args.quick and not torch.cuda.is_available():
        print(f"{NAME}: skipped (no CUDA device: the GPU fast path is measured on a GPU)")
        return
    sys.path.insert(0, str(REPO / "src"))
    from deeppipe.augment.apply import eval_rows
    from deeppipe.data.stage import ingest, split
    from deeppipe.evaluation.predictor import predictor_for
    from deeppipe.models import build_model
    from deeppipe.spec.loader import ResolvedSpec, validate
    from deeppipe.training.stage import fit_experiment

    torch.set_float32_matmul_precision("high")
    device = torch.device("cuda" if torch.cuda.is_available() and not args.quick else "cpu")
    rounds = args.rounds or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        src, data_name = source(args.quick, Path(tmp))
        raw = yaml.safe_load((REPO / "pipelines" / "cifar10_speedrun.yml").read_text())
        raw["data"] = {"source": src, "split": {"val": 0.0, "test": "official"}}
        raw["train"].update(progress=False, device=str(device))
        if args.quick or args.epochs:
            raw["train"]["epochs"] = 1 if args.quick else args.epochs
        if args.quick:
            raw["train"].update(batch_size=64, eval_batch_size=64)
        rs = ResolvedSpec(NAME, "pipelines/cifar10_speedrun.yml", validate(raw, check_model=False, check_data=False),
                          raw)
        spec = rs.spec
        samples = ingest(spec)
        parts = split(spec, samples)
        pixels = torch.from_numpy(np.ascontiguousarray(samples.x.pixels()))
        y = torch.as_tensor(samples.targets()).long()
        sample_shape = tuple(pixels.shape[1:])
        torch.manual_seed(spec.seed)
        init = build_model(spec.model, sample_shape, 10)
        ours, hand = [], []
        for _ in range(rounds):  # interleaved: both see the same device and machine state
            sync(device)
            t0 = time.perf_counter()
            trained = fit_experiment(rs, samples, parts, picture=False)
            pred = predictor_for(spec, trained.artifact).predict(eval_rows(spec.augment, samples.x, parts.test, "test"))
            sync(device)
            acc = float((pred.argmax(1) == y[parts.test].numpy()).mean())
            ours.append({"s": time.perf_counter() - t0, "accuracy": acc})
            t0 = time.perf_counter()
            loop = HandWritten(spec, copy.deepcopy(init), pixels[parts.train], y[parts.train], device)
            loop.train(spec.train.epochs)
            acc = loop.accuracy(pixels[parts.test], y[parts.test])
            sync(device)
            hand.append({"s": time.perf_counter() - t0, "accuracy": acc})
    ratio = statistics.median(o["s"] / h["s"] for o, h in zip(ours, hand, strict=True))
    images = len(parts.train) * spec.train.epochs
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    record = {
        "name": NAME, "value": round(ratio, 3), "unit": "x the hand-written on-device loop's time (train + TTA test)",
        "goal": f"<= {GOAL}", "baseline": "hand-written on-device loop: same network, data, recipe, bf16/NHWC/compile",
        "ratio": round(ratio, 3), "data": data_name, "epochs": spec.train.epochs, "rounds": rounds,
        "deeppipe": {"seconds": [round(o["s"], 2) for o in ours], "test_accuracy": [round(o["accuracy"], 4) for o in ours],
                     "images_per_s": round(images / statistics.median(o["s"] for o in ours), 1)},
        "hand_written": {"seconds": [round(h["s"], 2) for h in hand],
                         "test_accuracy": [round(h["accuracy"], 4) for h in hand],
                         "images_per_s": round(images / statistics.median(h["s"] for h in hand), 1)},
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {gpu}, torch {torch.__version__}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick,
    }
    write_result(record, args.out)
    print(f"deeppipe {ours[-1]['accuracy']:.4f} in {statistics.median(o['s'] for o in ours):.1f} s; "
          f"hand-written {hand[-1]['accuracy']:.4f} in {statistics.median(h['s'] for h in hand):.1f} s ({data_name})")
    print(f"{NAME}: {ratio:.3f} x (goal <= {GOAL})")


if __name__ == "__main__":
    main()
