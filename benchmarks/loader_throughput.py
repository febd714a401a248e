"""Images/s of deeppipe's online augmentation loader vs a bare loop over the same albumentations Compose.

Three measurements on the same Fashion-MNIST images and the same typical 5-step pipeline
(flip, affine, brightness/contrast, noise, coarse dropout), interleaved, median of several runs:
- bare: ``for img in x: compose(image=img)`` in this process (the ceiling for per-sample work
  on one core);
- loader: deeppipe's per-sample path (``AlbumentationsBatches``: DataLoader workers, per-batch
  seeding, stacking, hand-off to the trainer) with its default worker count;
- device: deeppipe's device-side batch path (``TensorBatches`` + batch transform) on the CPU;
- stream: the same device path over the images written as PNG files and decoded by DataLoader
  workers while the epoch runs (``data.stream: true``: nothing held in memory).

The figure is loader / bare (goal >= 0.9). Run: ``.venv/bin/python benchmarks/loader_throughput.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import write_json  # benchmarks/_results.py (this folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PIPELINE = [
    {"HorizontalFlip": {"p": 0.5}},
    {"Affine": {"rotate": [-15, 15], "translate_percent": [-0.1, 0.1], "scale": [0.9, 1.1],
                "p": 0.8}},
    {"RandomBrightnessContrast": {"brightness_limit": 0.2, "contrast_limit": 0.2, "p": 0.5}},
    {"GaussNoise": {"std_range": [0.02, 0.08], "p": 0.3}},
    {"CoarseDropout": {"num_holes_range": [1, 2], "hole_height_range": [0.1, 0.25],
                       "hole_width_range": [0.1, 0.25], "p": 0.5}},
]


def load_images(n: int) -> np.ndarray:
    path = ROOT.parent / "shared" / "data" / "fashion-mnist" / "train-images-idx3-ubyte.gz"
    if path.exists():
        with gzip.open(path, "rb") as f:
            data = f.read()
        nd = data[3]
        dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd)]
        arr = np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)[:n]
        return (arr.astype(np.float32) / 255.0)[:, None]
    from sklearn.datasets import load_digits  # offline fallback: real 8x8 digits, tiled up

    d = load_digits().images.astype(np.float32) / 16.0
    reps = -(-n // len(d))
    return np.tile(d, (reps, 1, 1))[:n, None]


def write_pngs(x: np.ndarray, root: Path):
    """The images as PNG files, one class folder, streamed back (``data.stream``'s StreamedImages)."""
    from PIL import Image

    from deeppipe.data.stream import StreamedImages

    (root / "all").mkdir()
    files = []
    for i, img in enumerate(x):
        files.append(str(root / "all" / f"{i:05d}.png"))
        Image.fromarray(np.round(img[0] * 255).astype(np.uint8)).save(files[-1])
    return StreamedImages(files, tuple(x.shape[2:]), int(x.shape[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny smoke run")
    ap.add_argument("--n", type=int, default=None, help="images per pass")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None, help="loader workers (default: deeppipe's)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "loader_throughput.json")
    args = ap.parse_args()
    n = args.n or (256 if args.quick else 8192)
    repeats = args.repeats or (2 if args.quick else 5)

    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # before any worker is forked: one core per process, like the workers

    from deeppipe.augment import AugmentConfig
    from deeppipe.augment.apply import build_train_source, train_plan
    from deeppipe.augment.loader import AlbumentationsBatches
    from deeppipe.augment.transform import seed_compose

    x = load_images(n)
    y = np.zeros(len(x), dtype=np.int64)
    cfg = AugmentConfig(train=PIPELINE)
    compose, plan, _ = train_plan(cfg)
    assert plan is not None, "the typical pipeline should have a device-side version"
    cpu = torch.device("cpu")
    loader = AlbumentationsBatches(x, y, compose, 256, seed=0, device=cpu, num_workers=args.workers)
    device_src = build_train_source(cfg, x, y, batch_size=256, device=cpu, seed=0, log=lambda m: None)
    folder = tempfile.TemporaryDirectory()
    stream_src = build_train_source(cfg, write_pngs(x, Path(folder.name)), y, batch_size=256, device=cpu, seed=0,
                                    log=lambda m: None)
    hwc = [np.ascontiguousarray(img.transpose(1, 2, 0)) for img in x]

    def bare() -> float:
        seed_compose(compose, 0, 0)
        t = time.perf_counter()
        for img in hwc:
            compose(image=img)
        return len(hwc) / (time.perf_counter() - t)

    def run_source(src, epoch: int) -> float:
        t = time.perf_counter()
        count = 0
        for xb, _ in src.epoch(epoch):
            count += len(xb)
        return count / (time.perf_counter() - t)

    run_source(loader, 0)  # start the persistent workers, warm caches
    run_source(device_src, 0)
    run_source(stream_src, 0)
    bare()
    rates: dict[str, list[float]] = {"bare": [], "loader": [], "device": [], "stream": []}
    for r in range(repeats):  # interleaved so that machine load hits all three alike
        rates["bare"].append(bare())
        rates["loader"].append(run_source(loader, r + 1))
        rates["device"].append(run_source(device_src, r + 1))
        rates["stream"].append(run_source(stream_src, r + 1))
    folder.cleanup()
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratio = med["loader"] / med["bare"]
    for k, v in rates.items():
        print(f"  {k:7s} images/s: median {med[k]:10.0f}  runs {[round(a) for a in v]}")
    print(f"  loader workers: {loader.num_workers}; images {n} of shape {tuple(x.shape[1:])}; "
          f"device path on CPU: {med['device'] / med['bare']:.1f}x the bare loop")
    payload = {
        "name": "loader_throughput",
        "value": round(ratio, 3),
        "unit": "x bare albumentations loop (images/s ratio)",
        "goal": 0.9,
        "baseline": round(med["bare"], 1),
        "ratio": round(ratio, 3),
        "loader_images_per_s": round(med["loader"], 1),
        "device_images_per_s_cpu": round(med["device"], 1),
        "device_ratio": round(med["device"] / med["bare"], 2),
        "stream_images_per_s": round(med["stream"], 1),
        "stream_ratio": round(med["stream"] / med["bare"], 2),
        "workers": loader.num_workers,
        "images": n,
        "repeats": repeats,
        "pipeline": [next(iter(s)) for s in PIPELINE],
        "quick": args.quick,
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpus, "
                   f"{platform.system()} {platform.release()}".replace("  ", " "),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_json(args.out, payload)
    print(f"loader_throughput: {ratio:.3f} x bare loop (goal 0.9)")


if __name__ == "__main__":
    main()
