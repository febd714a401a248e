"""Data-parallel training through torch.distributed's elastic launcher (the engine of torchrun).

``fit`` calls ``launch`` when ``train.distributed.nproc_per_node > 1``: it starts that many
worker processes on this machine, each runs the ordinary Trainer with DistributedDataParallel
on its share of every global batch, and rank 0 alone logs and checkpoints. Rank 0's metrics
reach the caller's tracker through a queue (the tracker itself stays in this process), and
rank 0 returns the trained weights. Inside an existing ``torchrun`` (multi-node), ``fit`` runs
as the given rank directly: see ``in_torchrun``.
"""

from __future__ import annotations

import os
import pickle
import queue as queue_mod
import threading
import uuid
from typing import TYPE_CHECKING, Any

import click
import torch
import torch.distributed as dist

from deeppipe.errors import SpecError
from deeppipe.tracking.tracker import NullTracker, Tracker
from deeppipe.training.config import TrainConfig
from deeppipe.training.device import deterministic_mode
from deeppipe.training.errors import TrainingError
from deeppipe.training.result import FitJob, FitResult

if TYPE_CHECKING:  # deeppipe.data imports scikit-learn (1 s): keep worker start-up lean
    from deeppipe.data.batches import BatchSource


def in_torchrun() -> bool:
    """True inside a process started by torchrun / elastic_launch with more than one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def _backend(cfg: TrainConfig, device: torch.device) -> str:
    name = cfg.distributed.backend if cfg.distributed else "auto"
    if name == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if name == "nccl" and device.type != "cuda":
        raise SpecError(
            "the nccl backend needs CUDA devices",
            path="train.distributed.backend",
            expected="gloo on CPU",
            found=name,
        )
    return name


class _Discard:
    """A file that forgets what is written to it."""

    def write(self, data: bytes) -> int:
        return len(data)


class _QueueTracker(NullTracker):
    """Rank 0's tracker: forwards metric dicts to the launching process."""

    def __init__(self, q: Any) -> None:
        self.q = q

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.q.put(("metrics", dict(metrics), step))


def _local_device(cfg: TrainConfig) -> torch.device:
    from deeppipe.training.device import resolve_device

    device = resolve_device(cfg.device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


class _OnDevice:
    """A BatchSource view that moves each batch to this rank's device (no-op on CPU)."""

    def __init__(self, src: BatchSource, device: torch.device) -> None:
        self.src, self.device = src, device
        self.batch_size, self.num_samples = src.batch_size, src.num_samples

    def __len__(self) -> int:
        return len(self.src)

    def epoch(self, epoch: int):
        for xb, yb in self.src.epoch(epoch):
            yield xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)


def run_rank(job: FitJob) -> tuple[FitResult, dict | None]:
    """Train as one rank of an initialised (or to-be-initialised) process group."""
    from deeppipe.training.trainer import Trainer

    device = _local_device(job.cfg)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(_backend(job.cfg, device))
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        trainer = Trainer(
            job.model,
            _OnDevice(job.train, device),
            job.val and _OnDevice(job.val, device),
            job.cfg,
            job.task,
            tracker=job.tracker if rank == 0 else None,
            checkpoint_dir=job.checkpoint_dir,
            seed=job.seed,
            spec_hash=job.spec_hash,
            metrics_fn=job.metrics_fn,
            rank=rank,
            world=world,
            device=device,
        )
        result = trainer.run()
        state = {k: v.detach().cpu() for k, v in job.model.state_dict().items()} if rank == 0 else None
        dist.barrier()
        return result, state
    finally:
        if owns_group:
            dist.destroy_process_group()


def _worker(job: FitJob, q: Any) -> dict[str, Any]:
    """Entry point of each launched process (module level so spawn can import it)."""
    import copy

    # torch.multiprocessing hands CPU tensors over in shared memory: without a private copy
    # every rank's optimizer would step the same parameters (and the caller's model).
    job = job.with_(model=copy.deepcopy(job.model))
    torch.set_num_threads(
        max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    )
    tracker = _QueueTracker(q) if q is not None and os.environ.get("RANK") == "0" else None
    try:
        with deterministic_mode(job.cfg.deterministic):
            result, state = run_rank(job.with_(tracker=tracker))
    except click.ClickException as exc:  # a spec mistake or a diverged run: report it cleanly
        return {"error": str(exc)}  # (raised, the launcher would wrap it in ChildFailedError)
    return {"result": result, "state": state}


def _relay(q: Any, tracker: Tracker, stop: threading.Event) -> None:
    while not (stop.is_set() and q.empty()):
        try:
            kind, metrics, step = q.get(timeout=0.2)
        except (queue_mod.Empty, EOFError, OSError):
            continue
        if kind == "metrics":
            tracker.log_metrics(metrics, step=step)


def launch(job: FitJob) -> FitResult:
    """Run ``nproc_per_node`` ranks on this machine via elastic_launch and collect rank 0's
    result; the trained weights are loaded into ``model``."""
    import multiprocessing as mp

    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    nproc = job.cfg.distributed.nproc_per_node
    tracker = job.tracker
    shipped = job.with_(tracker=None)  # the tracker stays here; rank 0's metrics come back by queue
    try:
        pickle.Pickler(_Discard()).dump(shipped)  # the check, without holding a copy
    except Exception as exc:  # spawn pickles them: say which object is to blame
        raise TrainingError(
            f"train.distributed needs picklable model, data and metrics_fn "
            f"(spawned worker processes receive them): {exc}"
        ) from exc
    q = mp.get_context("spawn").Queue() if tracker is not None else None
    stop = threading.Event()
    relay = None
    if q is not None:
        relay = threading.Thread(target=_relay, args=(q, tracker, stop), daemon=True)
        relay.start()
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"deeppipe-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.2,
        start_method="spawn",
    )
    try:
        outputs = elastic_launch(config, _worker)(shipped, q)
    finally:
        stop.set()
        if relay is not None:
            relay.join(timeout=10)
    first = outputs[0]
    if "error" in first:
        raise TrainingError(first["error"])
    job.model.load_state_dict(first["state"])
    return first["result"]
