"""The training loop: one object that owns a run's state, so checkpoints capture all of it.

The inner loop is kept as close to a hand-written PyTorch loop as possible: per step it only
appends the detached loss to a list (no host sync); progress, gradient norms and the
non-finite check happen every ``log_every`` steps; everything else happens once per epoch.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

import deeppipe.training.checkpoint as ckpt
from deeppipe.errors import SpecError
from deeppipe.tracking.tracker import NullTracker, Tracker
from deeppipe.training.config import TrainConfig
from deeppipe.training.device import resolve_device, seed_everything
from deeppipe.training.early_stopping import build_tracker
from deeppipe.training.ema import build_ema
from deeppipe.training.engine import compiled, resolve_engine
from deeppipe.training.errors import TrainingError, is_out_of_memory, oom_message
from deeppipe.training.losses import build_loss, on_standard_scale
from deeppipe.training.mixing import Mixer
from deeppipe.training.optim import build_optimizer
from deeppipe.training.params import freeze
from deeppipe.training.progress import EpochBar
from deeppipe.training.regularize import build_penalty, build_proximal, clip_gradients, global_norm
from deeppipe.training.result import FitResult
from deeppipe.training.schedules import build_schedule
from deeppipe.training.validation import MetricsFn, validate

if TYPE_CHECKING:  # deeppipe.data imports scikit-learn (1 s): keep worker start-up lean
    from deeppipe.data.batches import BatchSource
    from deeppipe.data.task import Task

log = logging.getLogger(__name__)


class Trainer:
    """Trains ``model`` on ``train`` as ``cfg`` says; ``rank``/``world`` > 1 inside DDP workers."""

    def __init__(
        self,
        model: nn.Module,
        train: BatchSource,
        val: BatchSource | None,
        cfg: TrainConfig,
        task: Task,
        *,
        tracker: Tracker | None = None,
        checkpoint_dir: Path | None = None,
        seed: int = 0,
        spec_hash: str | None = None,
        metrics_fn: MetricsFn | None = None,
        rank: int = 0,
        world: int = 1,
        device: torch.device | None = None,
    ) -> None:
        self.model, self.train_src, self.val_src = model, train, val
        self.cfg, self.task, self.seed, self.spec_hash = cfg, task, seed, spec_hash
        self.tracker = tracker or NullTracker()
        self.ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.metrics_fn, self.rank, self.world = metrics_fn, rank, world
        self.main = rank == 0
        self.device = device or resolve_device(cfg.device)
        if task.kind == "reconstruction" and (cfg.mixup or cfg.cutmix):
            raise SpecError(
                "mixup/cutmix mix labels; an autoencoder has none",
                path="train.mixup" if cfg.mixup else "train.cutmix",
                expected="no mixing for task 'reconstruction'",
                found="set",
            )
        seed_everything(seed)
        self._setup()

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        cfg = self.cfg
        self.model.to(self.device)
        self.engine = eng = resolve_engine(cfg, self.device, self.model)  # what `auto` is here
        if eng.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.frozen = freeze(self.model, cfg.freeze)
        self.ema = build_ema(self.model, cfg.ema)  # evaluated and saved in place of the model
        self.opt = build_optimizer(self.model, cfg.optimizer, fused=eng.fused)
        self.params = [p for g in self.opt.param_groups for p in g["params"]]
        self.all_params = list(self.model.parameters())
        self.steps_per_epoch = math.ceil(len(self.train_src) / cfg.grad_accumulation)
        self.schedule = build_schedule(
            self.opt, cfg.schedule, epochs=cfg.epochs, steps_per_epoch=self.steps_per_epoch
        )
        self.loss_fn = on_standard_scale(build_loss(cfg.loss, self.task), self.model)
        self.penalty = build_penalty(self.model, cfg.regularization)
        self.prox = build_proximal(self.opt, self.model, cfg.regularization)  # L1 after each step
        self.mixer = Mixer(cfg.mixup, cfg.cutmix, self.seed)
        self.best = build_tracker(cfg.early_stopping, self.val_src is not None)
        self.scaler = torch.amp.GradScaler(self.device.type) if eng.precision == "fp16" else None
        self.history: list[dict[str, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.start_epoch, self.resumed_from, self.finished = 0, None, False
        self.stopped_early = False
        self.net: nn.Module = self.model
        self.progress = EpochBar(cfg.epochs) if cfg.progress and self.main else None
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DDP(self.model, device_ids=ids)
        self.net = compiled(self.net, eng)
        if self.main and self.device.type != "cpu":
            log.info("training on %s: %s", self.device, eng.describe())

    def _autocast(self) -> contextlib.AbstractContextManager:
        return self.engine.autocast(self.device)

    # ------------------------------------------------------------------ checkpoints
    def _payload(self, finished: bool) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "schedule": None if self.schedule is None else self.schedule.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "rng": ckpt.rng_state(),
            "epoch": len(self.history),
            "spec_hash": self.spec_hash,
            "finished": finished,
            "stopped_early": self.stopped_early,
            "best_epoch": self.best.best_epoch,
            "best_metric": self.best.best,
            "best": self.best.state_dict(),
            "best_state": self.best_state,
            "history": self.history,
        }

    def save(self, finished: bool = False) -> None:
        if self.ckpt_dir is not None and self.main:
            ckpt.save(self.ckpt_dir, self._payload(finished))

    def try_resume(self) -> None:
        """Continue from ``checkpoint_dir/last.pt`` when it was written by the same spec."""
        if self.ckpt_dir is None or not self.cfg.checkpoint.resume:
            return
        info = ckpt.checkpoint_info(self.ckpt_dir)
        if info is None:
            return
        if info.get("spec_hash") != self.spec_hash:
            msg = (
                f"the checkpoint in {self.ckpt_dir} was written by a different spec "
                f"(spec hash {info.get('spec_hash')!r}, this run {self.spec_hash!r}); it was "
                "not loaded. Delete the folder, or set train.checkpoint.on_mismatch: restart "
                "(or train.checkpoint.resume: false) to start over."
            )
            if self.cfg.checkpoint.on_mismatch == "error":
                raise TrainingError(msg)
            log.warning(msg + " Starting from scratch.")
            return
        state = ckpt.load(self.ckpt_dir, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if self.schedule is not None and state["schedule"] is not None:
            self.schedule.load_state_dict(state["schedule"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state.get("ema"))
        self.best.load_state_dict(state["best"])
        self.best_state = state["best_state"]
        self.history = [dict(h) for h in state["history"]]
        self.start_epoch = self.resumed_from = int(state["epoch"])
        self.finished, self.stopped_early = bool(state["finished"]), bool(state["stopped_early"])
        self._rng = state["rng"]
        if self.main:
            log.info("resuming from %s at epoch %d", self.ckpt_dir, self.start_epoch)

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, epoch: int) -> dict[str, float]:
        cfg, model, net, opt = self.cfg, self.model, self.net, self.opt
        model.train()
        if self.mixer.active:
            self.mixer.start_epoch(epoch)
        accum, n_batches, log_every = cfg.grad_accumulation, len(self.train_src), cfg.log_every
        recon = self.task.kind == "reconstruction"
        sched, loss_fn, channels_last = self.schedule, self.loss_fn, self.engine.channels_last
        fast = (
            self.world == 1
            and self.scaler is None
            and not self.mixer.active
            and self.penalty is None
            and self.prox is None
            and self.cfg.clip is None
            and accum == 1
        )
        losses: list[torch.Tensor] = []
        sizes: list[int] = []
        grad_norms: list[torch.Tensor] = []
        bar = self.progress
        if bar is not None:
            bar.start(epoch, n_batches)
        opt_steps = 0
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        for i, (xb, yb) in enumerate(self.train_src.epoch(epoch)):
            if recon and yb.shape != xb.shape:
                yb = xb
            if channels_last and xb.dim() == 4:
                xb = xb.contiguous(memory_format=torch.channels_last)
            if fast:  # exactly the hand-written loop's work, plus one list append
                with self._autocast():  # bf16 on CUDA by default; a no-op context in fp32
                    loss = loss_fn(net(xb), yb)
                loss.backward()
                if opt_steps % log_every == 0:
                    self._optimizer_step(True, grad_norms)
                else:
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                    if self.ema is not None:
                        self.ema.update(model)
                opt_steps += 1
                if sched is not None:
                    sched.after_step()
                losses.append(loss.detach())
                sizes.append(xb.shape[0])
            else:
                loss, n, stepped = self._general_step(i, xb, yb, grad_norms, opt_steps)
                opt_steps += stepped
                losses.append(loss.detach())
                sizes.append(n)
            if (i + 1) % log_every == 0:
                value = loss.item()
                # under DDP only the epoch-end check (after all-reduce): a rank stopping alone
                # would leave the others waiting in the next all-reduce
                if self.world == 1 and not math.isfinite(value):
                    self._diverged(epoch, losses)
                if bar is not None:
                    bar.update(i + 1, value)
            elif bar is not None and (i + 1) % bar.stride == 0:  # the bar moves, no host sync
                bar.update(i + 1)
        train_time = self._elapsed(t0)
        # one device-to-host copy per epoch; plain Python arithmetic after it
        values = torch.stack(losses).float().tolist()
        loss_sum, count = math.fsum(v * n for v, n in zip(values, sizes)), float(sum(sizes))
        if self.world > 1:  # every rank saw its own shard: sum them (all ranks then agree)
            both = self._all_reduce(
                torch.tensor([loss_sum, count], dtype=torch.float64, device=self.device)
            )
            loss_sum, count = both.tolist()
        rec = {"train/loss": loss_sum / count}  # a NaN or inf anywhere shows in the sum
        if not math.isfinite(rec["train/loss"]):
            self._diverged(epoch, losses)
        rec["lr"] = float(opt.param_groups[0]["lr"])
        if grad_norms:  # fp16 steps the gradient scaler skipped have inf norms: leave them out
            norms = [g for g in torch.stack(grad_norms).float().tolist() if math.isfinite(g)]
            rec["grad_norm"] = sum(norms) / len(norms) if norms else float("inf")
        rec["epoch_time_s"] = train_time
        rec["samples_per_s"] = self.train_src.num_samples / max(train_time, 1e-9)
        return rec

    def _general_step(
        self,
        i: int,
        xb: torch.Tensor,
        yb: torch.Tensor,
        grad_norms: list[torch.Tensor],
        opt_steps: int,
    ) -> tuple[torch.Tensor, int, int]:
        """One batch with any of mixing, DDP sharding, accumulation, autocast, loss scaling
        and penalties; returns the batch loss, the samples it counts for, optimizer steps taken."""
        accum, n_batches, net = self.cfg.grad_accumulation, len(self.train_src), self.net
        y2, lam = None, 1.0
        if self.mixer.active:  # on the global batch, before sharding: DDP mixes as one process
            xb, perm, lam = self.mixer(xb)
            y2 = None if perm is None else yb.index_select(0, perm)
        scale = 1.0
        if self.world > 1:
            xb, yb, y2, scale = self._shard(xb, yb, y2)
        n = xb.shape[0] if scale else 0
        if accum > 1:  # mean over the micro-batches of this optimizer step
            scale /= min(accum, n_batches - (i // accum) * accum)
        sync = accum == 1 or (i + 1) % accum == 0 or i + 1 == n_batches
        with self._no_sync(sync):
            with self._autocast():
                loss, obj = self._forward(net, xb, yb, y2, lam, scale)
            (obj if self.scaler is None else self.scaler.scale(obj)).backward()
        if not sync:
            return loss, n, 0
        self._optimizer_step(opt_steps % self.cfg.log_every == 0, grad_norms)
        if self.schedule is not None:
            self.schedule.after_step()
        return loss, n, 1

    def _forward(
        self,
        net: nn.Module,
        xb: torch.Tensor,
        yb: torch.Tensor,
        y2: torch.Tensor | None,
        lam: float,
        scale: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch loss (mixed when mixing) and the objective to differentiate (plus the
        penalty, scaled for accumulation / sharding)."""
        out = net(xb)
        loss = self.loss_fn(out, yb)
        if y2 is not None:
            loss = lam * loss + (1.0 - lam) * self.loss_fn(out, y2)
        obj = loss if self.penalty is None else loss + self.penalty()
        return loss, (obj * scale if scale != 1.0 else obj)

    def _optimizer_step(self, sample_norm: bool, grad_norms: list[torch.Tensor]) -> None:
        clip, scaler, opt = self.cfg.clip, self.scaler, self.opt
        if scaler is not None and (clip is not None or sample_norm):
            scaler.unscale_(opt)
        if sample_norm:
            grads = [p.grad for p in self.params if p.grad is not None]
            grad_norms.append(global_norm(grads))
        if clip is not None:
            clip_gradients(self.params, clip)
        if scaler is None:
            opt.step()
        else:
            scaler.step(opt)
            scaler.update()
        if self.prox is not None:
            self.prox()
        opt.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)

    def _diverged(self, epoch: int, losses: list[torch.Tensor]) -> None:
        values = torch.stack(losses).float()
        bad_steps = (~torch.isfinite(values)).nonzero()
        where = (
            f"step {int(bad_steps[0, 0])} of that epoch" if len(bad_steps) else "another process"
        )
        value = float(values[int(bad_steps[0, 0])]) if len(bad_steps) else float("nan")
        kept = (
            f"the last good checkpoint (after epoch {len(self.history)}) is kept in {self.ckpt_dir}"
            if self.ckpt_dir is not None and len(self.history)
            else "no checkpoint was written"
        )
        raise TrainingError(
            f"the training loss became {value} in epoch {epoch + 1} of {self.cfg.epochs}, "
            f"{where}; {kept}. Try a lower train.optimizer.lr, gradient "
            "clipping (train.clip: {norm: 1.0}), a warm-up, or train.precision: fp32."
        )

    # ------------------------------------------------------------------ helpers
    def _shard(
        self, xb: torch.Tensor, yb: torch.Tensor, y2: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, float]:
        """This rank's contiguous part of the global batch (DistributedSampler-equivalent).

        The loss is scaled by world * n_rank / n so that DDP's gradient average equals the
        gradient of the global batch's mean loss, even when the batch does not split evenly.
        """
        n = xb.shape[0]
        per = math.ceil(n / self.world)
        lo, hi = min(self.rank * per, n), min((self.rank + 1) * per, n)
        scale = self.world * (hi - lo) / n
        if hi == lo:  # no sample for this rank: take one with zero weight so DDP still syncs
            lo, hi, scale = 0, 1, 0.0
        return xb[lo:hi], yb[lo:hi], None if y2 is None else y2[lo:hi], scale

    def _no_sync(self, sync: bool) -> contextlib.AbstractContextManager:
        if sync or self.world == 1:
            return contextlib.nullcontext()
        return self.net.no_sync()

    def _all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        t = t.clone()
        dist.all_reduce(t)
        return t

    def _elapsed(self, t0: float) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - t0

    def evaluate(self) -> dict[str, float]:
        if self.val_src is None:
            return {}
        return validate(
            self.model if self.ema is None else self.ema.module,
            self.val_src,
            self.loss_fn,
            self.task,
            autocast=self._autocast(),
            channels_last=self.engine.channels_last,
            metrics_fn=self.metrics_fn,
        )

    # ------------------------------------------------------------------ the run
    def run(self) -> FitResult:
        self._rng = None
        self.try_resume()
        if self._rng is not None:
            ckpt.set_rng_state(self._rng)
        if not self.finished:
            try:
                self._loop()
            except (RuntimeError, MemoryError) as exc:  # CUDA's OutOfMemoryError, MPS', the CPU allocator's
                if not is_out_of_memory(exc):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                raise TrainingError(
                    oom_message(
                        self.cfg.batch_size,
                        self.cfg.grad_accumulation,
                        str(self.device),
                        self.engine.precision,
                        parameters=sum(p.numel() for p in self.model.parameters()),
                    )
                ) from exc
            finally:
                if self.progress is not None:
                    self.progress.close()
        elif self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self._result()

    def _loop(self) -> None:
        es = self.cfg.early_stopping
        for epoch in range(self.start_epoch, self.cfg.epochs):  # 0-based here (seeds); 1-based for users
            t0 = time.perf_counter()
            number = epoch + 1  # the epoch number users read: history, MLflow steps, messages, plots
            rec = {"epoch": number, **self.train_epoch(epoch), **self.evaluate()}
            with torch.no_grad():
                rec["weight_norm"] = float(global_norm(self.all_params))
            rec["epoch_time_s"] = time.perf_counter() - t0
            if self.progress is not None:
                self.progress.finish(len(self.train_src), rec)
            self.history.append(rec)
            if self.best.update(number, rec) and es is not None and es.restore_best:
                evaluated = self.model if self.ema is None else self.ema.module
                self.best_state = {k: v.detach().clone() for k, v in evaluated.state_dict().items()}
            if self.schedule is not None:
                self.schedule.after_epoch(rec)
            if self.main:
                self.tracker.log_metrics({k: v for k, v in rec.items() if k != "epoch"}, step=number)
                if not self.cfg.progress:
                    log.info(
                        "epoch %d/%d: %s",
                        number,
                        self.cfg.epochs,
                        ", ".join(f"{k}={v:.4g}" for k, v in rec.items() if k != "epoch"),
                    )
            last = epoch + 1 == self.cfg.epochs
            if es is not None and self.best.should_stop and not last:
                self.stopped_early = True
                if self.main:
                    log.info(
                        "early stopping after epoch %d of %d: %s did not improve for %d epochs "
                        "(best %.4g at epoch %s)",
                        number,
                        self.cfg.epochs,
                        es.monitor,
                        es.patience,
                        self.best.best,
                        self.best.best_epoch,
                    )
                break
            if not last and (epoch + 1) % self.cfg.checkpoint.every == 0:
                self.save()
        if self.ema is not None:
            self.model.load_state_dict(self.ema.module.state_dict())
        if es is not None and es.restore_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.finished = True
        self.save(finished=True)

    def _result(self) -> FitResult:
        es = self.cfg.early_stopping
        restored = bool(es is not None and es.restore_best and self.best_state is not None)
        return FitResult(
            history=self.history,
            best_epoch=self.best.best_epoch,
            best_metric=self.best.best,
            monitor=self.best.monitor,
            stopped_early=self.stopped_early,
            epochs_run=len(self.history),
            resumed_from=self.resumed_from,
            restored_best=restored,
            checkpoint_path=(self.ckpt_dir / ckpt.CHECKPOINT) if self.ckpt_dir else None,
        )
