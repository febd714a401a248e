"""``tune.keep_top: K``: the models of the study's K best trials, kept as model artifacts under
``<study folder>/trials/<number>/`` with ``top.json`` listing them best first (what
``ensemble.members: {from_trials: topK}`` reads through ``top_trials``).

Each worker offers its trial's model when it finishes; whoever writes last brings the folder
and the index back to the study's current top K, so several workers may share it. Ranking is
by the objective (several objectives: by the pick rule's objective, then the others).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from deeppipe.artifact import ModelArtifact, load_artifact, save_artifact
from deeppipe.files import write_json

INDEX = "top.json"


class KeepTop:
    def __init__(self, folder: Path, k: int, directions: list[str], order: list[int]) -> None:
        self.folder, self.k, self.directions, self.order = folder, k, directions, order

    def key(self, values: list[float]) -> tuple[float, ...]:
        """Smaller is better: each objective in ranking order, signed by its direction."""
        return tuple(values[i] if self.directions[i] == "min" else -values[i] for i in self.order)

    def offer(self, trial: optuna.Trial, values: list[float], artifact: ModelArtifact) -> None:
        done = [(t.number, list(t.values)) for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.values is not None]
        ranked = sorted([*done, (trial.number, values)], key=lambda nv: self.key(nv[1]))[: self.k]
        if trial.number in {n for n, _ in ranked}:
            save_artifact(artifact, self.folder / f"{trial.number:05d}")
        self.sync(ranked)

    def sync(self, ranked: list[tuple[int, list[float]]]) -> list[dict[str, Any]]:
        """Leave exactly the models of ``ranked`` (best first) and their index."""
        keep = {f"{n:05d}" for n, _ in ranked}
        if self.folder.is_dir():
            for p in self.folder.iterdir():
                if p.is_dir() and not p.name.startswith(".") and p.name not in keep:
                    shutil.rmtree(p, ignore_errors=True)
        index = [{"trial": n, "values": v, "path": f"{n:05d}"} for n, v in ranked if (self.folder / f"{n:05d}").is_dir()]
        write_json(self.folder / INDEX, index)
        return index

    def finish(self, study: optuna.Study) -> list[dict[str, Any]]:
        done = [(t.number, list(t.values)) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.values is not None]
        return self.sync(sorted(done, key=lambda nv: self.key(nv[1]))[: self.k])


def top_trials(folder: str | Path, k: int | None = None) -> list[tuple[int, ModelArtifact]]:
    """The kept trials' models, best first: [(trial number, artifact)] (at most ``k``)."""
    folder = Path(folder)
    index = json.loads((folder / INDEX).read_text()) if (folder / INDEX).exists() else []
    return [(int(e["trial"]), load_artifact(folder / e["path"])) for e in index[: k if k is not None else None]]
