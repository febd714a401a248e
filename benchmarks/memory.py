"""Peak memory and images/s of an image folder held in memory vs streamed from its files (issue 14, item 2).

Two generated JPEG folders in the image-folder layout (train/<class>/*.jpg, test/<class>/*.jpg,
32x32 RGB, ten classes): one the size of CIFAR-10 (50,000 + 10,000) and one of 200,000 images
(180,000 + 20,000). They are generated once (a minute or two on 2 cores) and cached under
``<tmp>/deeppipe-benchmark`` (``--cache``). Each case runs in a fresh child process, which reports
its own peak RSS (``resource.getrusage``: RUSAGE_SELF for the process, RUSAGE_CHILDREN for its
DataLoader workers), so one case never pollutes another's figure. A case is what a training run
does with the data: ``ingest`` (decode, or list, the folder), ``split``, the normalisation
statistics of the training split, then one epoch of the training batches (flip + shift augmentation
on the batch, as the device path does) drained by a consumer that only touches each batch.

Modes: ``float32`` is the data as the readers returned it before (the decoded images as one float32
array, 4 bytes a pixel; the old reader itself peaked higher still at ingest, holding a list of float32
images and their stacked copy at once), ``uint8`` holds the pixels as bytes (converted per batch),
``stream`` decodes them from the files in DataLoader workers while the epoch runs (``data.stream: true``). images/s is the epoch's training images / its
seconds (``ingest`` is timed apart: the in-memory modes decode everything there, streaming every epoch).

The figure: the streamed 200,000-image folder's peak RSS, goal flat in the data set's size (at most
1.25x the CIFAR-sized folder's streamed peak); baseline the float32 reader on the same folder.

    .venv/bin/python benchmarks/memory.py [--quick] [--out DIR] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing import Pool
from pathlib import Path

from _results import write_result  # benchmarks/_results.py (this folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
NAME, GOAL = "memory", 1.25
FOLDERS = {"cifar": (50_000, 10_000), "200k": (180_000, 20_000)}
QUICK = {"cifar": (300, 50), "200k": (900, 100)}
CASES = [("cifar", "float32"), ("cifar", "uint8"), ("cifar", "stream"), ("200k", "float32"), ("200k", "uint8"),
         ("200k", "stream")]
QUICK_CASES = [("cifar", "stream"), ("200k", "float32"), ("200k", "uint8"), ("200k", "stream")]  # what the record needs
CLASSES = 10


# ------------------------------------------------------------------------- the generated folders
def _write_chunk(job: tuple[str, int, int, int]) -> None:
    """Images ``start..stop`` of one class folder: smooth random texture, tinted by the class."""
    import numpy as np
    from PIL import Image

    folder, label, start, stop = job
    rng = np.random.default_rng([label, start])
    tint = np.array([(label * 37) % 256, (label * 91) % 256, (label * 53) % 256], np.float32)
    for i in range(start, stop):
        coarse = rng.random((8, 8, 3), dtype=np.float32) * 255
        img = np.kron(coarse, np.ones((4, 4, 1), np.float32)) * 0.6 + tint * 0.4
        img += rng.normal(0, 12, img.shape).astype(np.float32)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(f"{folder}/{i:06d}.jpg", quality=90)


def generate(root: Path, n_train: int, n_test: int) -> Path:
    """The folder, generated unless a complete copy is cached (``.complete`` written last)."""
    done = root / ".complete"
    if done.exists() and done.read_text() == f"{n_train} {n_test}":
        return root
    jobs = []
    for part, n in (("train", n_train), ("test", n_test)):
        per = n // CLASSES
        for c in range(CLASSES):
            folder = root / part / f"class_{c}"
            folder.mkdir(parents=True, exist_ok=True)
            jobs += [(str(folder), c, s, min(per, s + 2_000)) for s in range(0, per, 2_000)]
    t0 = time.perf_counter()
    with Pool(os.cpu_count() or 1) as pool:
        pool.map(_write_chunk, jobs)
    done.write_text(f"{n_train} {n_test}")
    print(f"generated {n_train + n_test} JPEGs under {root} in {time.perf_counter() - t0:.0f} s", flush=True)
    return root


# --------------------------------------------------------------------------- one case (child)
def child(folder: Path, mode: str) -> dict:
    """One case in this (fresh) process; its figures as a dict."""
    import gc

    import numpy as np
    import torch

    sys.path.insert(0, str(REPO / "src"))
    from deeppipe.augment.apply import build_train_source
    from deeppipe.data.normalize import compute_stats
    from deeppipe.data.sources import Samples
    from deeppipe.data.stage import ingest, split
    from deeppipe.data.storage import rows
    from deeppipe.spec.loader import validate

    torch.set_num_threads(1)
    raw = {"seed": 0,
           "data": {"source": {"type": "image_folder", "path": str(folder), "size": [32, 32]},
                    "split": {"val": 0.1, "test": "official"}, "stream": mode == "stream"},
           "augment": {"train": [{"HorizontalFlip": {"p": 0.5}}, {"Affine": {"translate_px": [-2, 2], "p": 0.5}}]},
           "model": {"layers": [{"Flatten": {}}, {"Linear": {"out_features": CLASSES}}]},
           "train": {"batch_size": 256}}
    spec = validate(raw, check_model=False, check_data=False)
    t0 = time.perf_counter()
    samples = ingest(spec)
    if mode == "float32":  # what every reader returned before: one float32 copy of each image
        samples = Samples(np.asarray(samples.x), samples.y, samples.task, samples.n_official_test, samples.meta)
    ingest_s = time.perf_counter() - t0
    stored = sum(np.asarray(a).nbytes for a in samples.to_arrays().values())
    parts = split(spec, samples)
    x_train = rows(samples.x, parts.train)
    compute_stats(x_train)
    source = build_train_source(spec.augment, x_train, samples.targets()[parts.train], batch_size=256,
                                device=torch.device("cpu"), seed=0, log=lambda _: None)
    t1, seen, touch = time.perf_counter(), 0, 0.0
    for xb, _ in source.epoch(0):
        seen += len(xb)
        touch += float(xb[0, 0, 0, 0])
    epoch_s = time.perf_counter() - t1
    del source
    gc.collect()  # the loader's workers exit and are reaped: RUSAGE_CHILDREN then holds them
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"images": len(samples.x), "train_images": seen, "ingest_s": round(ingest_s, 2),
            "epoch_s": round(epoch_s, 2), "images_per_s": round(seen / epoch_s, 1),
            "peak_rss_mib": round(own, 1), "worker_peak_rss_mib": round(workers, 1),
            "stored_mib": round(stored / 2**20, 1)}


def run_case(folder: Path, mode: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", str(folder), mode], capture_output=True, text=True,
                          timeout=3600, env={**os.environ, "OMP_NUM_THREADS": "1", "KEDRO_DISABLE_TELEMETRY": "true"})
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} on {folder} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny folders in a temporary directory (a smoke test)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "deeppipe-benchmark")
    ap.add_argument("--child", nargs=2, metavar=("FOLDER", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.child[1])))
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) if args.quick else args.cache
        sizes = QUICK if args.quick else FOLDERS
        folders = {k: generate(base / f"jpeg_{k}_{n + t}", n, t) for k, (n, t) in sizes.items()}
        results = {}
        for which, mode in QUICK_CASES if args.quick else CASES:
            r = results[f"{which}/{mode}"] = run_case(folders[which], mode)
            print(f"{which:>5} {mode:>7}: peak RSS {r['peak_rss_mib']:7.1f} MiB (workers {r['worker_peak_rss_mib']:6.1f}), "
                  f"stored {r['stored_mib']:7.1f} MiB, ingest {r['ingest_s']:6.1f} s, {r['images_per_s']:8.0f} images/s",
                  flush=True)
    big, small, before = results["200k/stream"], results["cifar/stream"], results["200k/float32"]
    growth = big["peak_rss_mib"] / small["peak_rss_mib"]
    record = {
        "name": NAME, "value": big["peak_rss_mib"],
        "unit": f"MiB peak RSS streaming {big['images']} JPEGs (32x32x3): ingest, split, statistics, one epoch",
        "goal": f"flat: <= {GOAL}x the {small['images']}-image folder's streamed peak (measured {growth:.2f}x)",
        "baseline": f"the float32 reader (before) on the same folder: {before['peak_rss_mib']} MiB",
        "ratio": round(big["peak_rss_mib"] / before["peak_rss_mib"], 3), "growth": round(growth, 3),
        "uint8_vs_float32_peak": round(results["200k/uint8"]["peak_rss_mib"] / before["peak_rss_mib"], 3),
        "cases": results,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick,
    }
    write_result(record, args.out)
    print(f"in memory, uint8 / float32 peak: {record['uint8_vs_float32_peak']} ({results['200k/uint8']['peak_rss_mib']} vs "
          f"{before['peak_rss_mib']} MiB); streamed / float32: {record['ratio']}; streamed 200k / 60k: {growth:.2f}")
    print(f"{NAME}: {record['value']} MiB (goal <= {GOAL}x flat, measured {growth:.2f}x)")


if __name__ == "__main__":
    main()
