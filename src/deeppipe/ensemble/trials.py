"""``{from_trials: topK}``: the models the tuning stage kept for its K best trials.

The interface with tuning is its kept-models folder: ``tune.keep_top: K`` keeps the best trials'
model folders under the study folder (the catalog's ``<experiment>.study``) in ``trials/``, with
``top.json`` listing them best first (``deeppipe.tuning.keep``). An ensemble of the top K loads
the first K; it trains nothing. In the pipeline the member nodes come after the tune node.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeppipe.errors import SpecError, join_path

if TYPE_CHECKING:  # not spec.loader's ResolvedSpec: validation (spec.checks) imports this module
    from deeppipe.artifact import ModelArtifact


def trials_dir(experiment: str, root: Path | None = None) -> Path:
    from deeppipe.layout import artefact

    return artefact(experiment, "study", root=root) / "trials"


def kept_trial(rs: Any, rank: int, root: Path | None = None) -> ModelArtifact:
    """The kept model of the ``rank``-th best trial (0 = the best)."""
    from deeppipe.ensemble.artifact import as_model
    from deeppipe.tuning.keep import top_trials

    folder = trials_dir(rs.name, root)
    kept = top_trials(folder, rank + 1)
    if len(kept) <= rank:
        raise SpecError(f"tuning kept {len(kept)} trial model(s) in {folder}; this ensemble needs #{rank + 1}",
                        path="ensemble.members", file=rs.file,
                        expected="a finished tuning run with tune.keep_top at least the trials the ensemble names "
                        "(kedro run --pipeline <experiment> --tags tune)", found=len(kept))
    number, artifact = kept[rank]
    artifact.meta.setdefault("tuning_trial", number)
    return as_model(artifact)


def check_trials(spec: Any, *, file: str | None = None) -> None:
    """``{from_trials: topK}`` needs a ``tune:`` section that keeps at least K trial models."""
    for i, member in enumerate(spec.ensemble.members):
        if member.from_trials is None:
            continue
        keep = getattr(spec.tune, "keep_top", 0) if spec.tune is not None else 0
        if keep < (member.count or 0):
            raise SpecError("members from tuning trials need the tuning stage to keep their models",
                            path=join_path("ensemble.members", i, "from_trials"), file=file,
                            expected=f"a tune: section with keep_top: {member.count} or more", found=keep)
