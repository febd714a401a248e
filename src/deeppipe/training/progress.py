"""The per-epoch progress bar, made cheap enough for 40 ms epochs.

One tqdm bar is reused across epochs (``reset``) instead of built per epoch, and it is only
drawn once an epoch has run for ``delay`` seconds: a short epoch costs a single summary line,
a long one shows the live bar (batches, rate, loss) and leaves its final state as its line.
Creating and drawing a bar costs ~0.3 ms, 1% of a small model's epoch. Without a terminal (a
log file, CI, ``| tee``) the bar is never drawn, since its carriage-return redraws would pile up
in the file: each epoch leaves its summary line only.
"""

from __future__ import annotations

from typing import Any


class EpochBar:
    """``start`` an epoch, ``update`` every few steps, ``finish`` it, ``close`` at the end."""

    def __init__(self, epochs: int, delay: float = 0.3) -> None:
        self.epochs, self.delay = epochs, delay
        self.bar: Any = None
        self.seen = 0
        self.stride = 1

    def start(self, epoch: int, total: int) -> None:
        desc = f"epoch {epoch + 1}/{self.epochs}"
        if self.bar is None:
            import sys

            from tqdm.auto import tqdm

            self.bar = tqdm(
                file=sys.stdout,  # the same stream as the run's log lines, in their order
                total=total,
                desc=desc,
                unit="batch",
                leave=False,
                dynamic_ncols=True,
                mininterval=0.5,
                delay=self.delay if sys.stdout.isatty() else float("inf"),
            )
        else:  # tqdm's reset() without its redraw: the clock restarts, so the delay is per epoch
            from tqdm.std import EMA

            bar = self.bar
            bar.n, bar.total, bar.last_print_n = 0, total, 0
            bar.last_print_t = bar.start_t = bar._time()
            bar._ema_dn, bar._ema_dt = EMA(bar.smoothing), EMA(bar.smoothing)
            bar._ema_miniters = EMA(bar.smoothing)
            bar.set_description_str(desc, refresh=False)
        self.seen = 0
        # about 20 moves per epoch, so a short epoch (digits: 20 batches) shows a live bar too
        self.stride = max(1, -(-total // 20))

    def update(self, done: int, loss: float | None = None) -> None:
        """Move the bar to ``done`` batches; the loss (a host sync to read) only when given."""
        self.bar.update(done - self.seen)
        self.seen = done
        if loss is not None:
            self.bar.set_postfix_str(f"loss={loss:.4f}", refresh=False)

    def finish(self, done: int, rec: dict[str, float]) -> None:
        """Leave one line for the epoch: the bar's final state if it was drawn, else a summary."""
        bar = self.bar
        keys = ("train/loss", "val/loss", "val/accuracy")
        text = ", ".join(
            f"{'loss' if k == 'train/loss' else k}={rec[k]:.4f}" for k in keys if k in rec
        )
        if bar.last_print_t >= bar.start_t + bar.delay:  # drawn: freeze it as this epoch's line
            bar.n = done
            bar.set_postfix_str(text, refresh=True)
            bar.fp.write("\n")
        else:
            bar.fp.write(f"{bar.desc}: {bar.total} batches, {text} [{rec['epoch_time_s']:.2f}s]\n")
        bar.fp.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
