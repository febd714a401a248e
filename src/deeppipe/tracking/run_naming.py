"""How a ``kedro run`` looks in MLflow's run list: a name that tells runs apart, and tags a user
can read and filter on.

kedro-mlflow names every run after its pipeline (so every run of an experiment has the same
name) and copies Kedro's run record into the tags as it is: the runner's object repr, the
session id under ``run_id`` (which reads as MLflow's own run id), the ``--params`` as a dict
repr, and a ``kedro_command`` without the ``--params`` that a later stage run (``--tags
evaluate``) continuing the same MLflow run overwrites. There is no setting for any of this, so
deeppipe names the run before kedro-mlflow opens it and tidies the tags right after.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

NAME_LIMIT = 60
# tags kedro-mlflow copies from Kedro's run record that say nothing a user can act on
_NOISE = ("runner", "run_id", "runtime_params", "project_path", "load_versions", "namespaces",
          "only_missing_outputs", "to_outputs")


def _value(v: Any) -> str:
    text = str(v).replace(" ", "")
    return text if len(text) <= 16 else text[:15] + "…"


def run_name(overrides: dict[str, Any], stages: set[str], *, full: bool = True) -> str:
    """``lr=0.01 epochs=3`` from the overrides (the last key of each path, the whole path when two
    would read alike), MLflow's own kind of random name (``bold-crow-123``) without any; a run of
    some stages only says which (``evaluate: bold-crow-123``)."""
    last = [k.rpartition(".")[2] for k in overrides]
    parts = [f"{k if last.count(short) > 1 else short}={_value(v)}" for k, short, v in
             zip(overrides, last, overrides.values(), strict=True)]
    name = ""
    for i, part in enumerate(parts):
        if name and len(name) + 1 + len(part) > NAME_LIMIT:
            name += f" +{len(parts) - i}"  # how many more overrides the name leaves out
            break
        name = f"{name} {part}".strip()
    if not name:
        name = _random_name()
    if not full:
        name = f"{','.join(sorted(stages))}: {name}"
    return name


def _random_name() -> str:
    try:  # the generator behind MLflow's default run names; private, so with a fallback
        from mlflow.utils.name_utils import _generate_random_name

        return _generate_random_name()
    except ImportError:
        import time

        return time.strftime("run-%Y%m%d-%H%M%S")


def command_line() -> str:
    """This process's command as the user typed it, ``--params`` included."""
    argv = list(sys.argv) or ["kedro"]
    return " ".join([Path(argv[0]).name, *(shlex.quote(a) for a in argv[1:])])


def tidy_run_tags(run_id: str, continued: Any, stages: set[str]) -> None:
    """Remove kedro-mlflow's noise tags; keep the training run's own ``kedro_command`` when a later
    stage run continues it, and record that stage run under ``kedro_command.<stage>-<stage>`` (or
    ``kedro_command.resumed`` for the rerun that resumes a killed training)."""
    import mlflow

    client = mlflow.MlflowClient()
    tags = client.get_run(run_id).data.tags
    if "run_id" in tags:
        client.set_tag(run_id, "kedro.session_id", tags["run_id"])
    for key in _NOISE:
        if key in tags:
            client.delete_tag(run_id, key)
    before = continued.data.tags if continued is not None else {}
    if before.get("kedro_command"):
        for key in ("kedro_command", "kedro.session_id", "tags", "pipeline_names", "node_names", "from_nodes",
                    "to_nodes", "from_inputs"):
            if before.get(key):
                client.set_tag(run_id, key, before[key])
            elif key in tags:
                client.delete_tag(run_id, key)
        label = "resumed" if "train" in stages else "-".join(sorted(stages))  # MLflow refuses commas in keys
        client.set_tag(run_id, f"kedro_command.{label}", command_line())
    else:
        client.set_tag(run_id, "kedro_command", command_line())
