"""The epoch bar: live in a terminal, one summary line per epoch in a log file."""

from __future__ import annotations

import io
import sys
import time

import pytest

from deeppipe.training.progress import EpochBar

REC = {"epoch": 1, "train/loss": 0.5, "val/loss": 0.4, "val/accuracy": 0.9, "epoch_time_s": 1.0}


class Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def _epochs(monkeypatch: pytest.MonkeyPatch, tty: bool) -> str:
    out = Stream(tty)
    monkeypatch.setattr(sys, "stdout", out)
    bar = EpochBar(2, delay=0.0)
    for epoch in range(2):
        bar.start(epoch, 10)
        for done in range(1, 11):
            time.sleep(0.03)  # past tqdm's mininterval once an epoch: a terminal gets redraws
            bar.update(done, loss=0.5)
        bar.finish(10, {**REC, "epoch": epoch + 1})
    bar.close()
    return out.getvalue()


def test_a_log_file_gets_one_line_per_epoch_and_no_redraws(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _epochs(monkeypatch, tty=False)
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2: 10 batches, loss=0.5000")
    assert lines[1].startswith("epoch 2/2") and "val/accuracy=0.9000" in lines[1]


def test_a_terminal_gets_the_live_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _epochs(monkeypatch, tty=True)
    assert "\r" in text and "batch/s" in text  # tqdm's live redraws
    assert "epoch 2/2" in text
