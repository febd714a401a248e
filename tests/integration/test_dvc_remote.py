"""A DVC remote restores a fresh clone without rerunning (a file of its own so that `make test`'s two
workers share the slow `dvc repro` runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import TINY_DIGITS, make_project, run
from tests.integration.test_dvc import _ran

pytestmark = pytest.mark.slow


def test_a_remote_restores_a_fresh_clone_without_rerunning(tmp_path: Path) -> None:
    """`dvc push` to a remote, then on a fresh clone `dvc pull` and `dvc repro` runs nothing."""
    project = make_project(tmp_path / "p", {"digits_tiny": TINY_DIGITS})
    (project / "src" / "deeppipe").unlink()  # a clone has the code itself, not a link to it
    import shutil

    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "src" / "deeppipe", project / "src" / "deeppipe",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (project / ".gitignore").write_text("mlflow.db\nmlruns/\n__pycache__/\n")
    for args in (["git", "init", "-q"], ["git", "config", "user.email", "t@example.com"],
                 ["git", "config", "user.name", "t"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"],
                 ["deeppipe", "dvc"], ["dvc", "repro", "-q"],
                 ["dvc", "remote", "add", "-d", "store", str(tmp_path / "remote")], ["dvc", "push", "-q"],
                 ["git", "add", "-A"], ["git", "commit", "-q", "-m", "experiment"]):
        run(args, project)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    run(["dvc", "pull", "-q"], clone)
    assert (clone / "data/06_models/digits_tiny/model/model.safetensors").exists()
    again = run(["dvc", "repro"], clone)
    assert _ran(again.stdout) == set(), again.stdout
    assert "up to date" in run(["dvc", "status"], clone).stdout
