"""The ``deeppipe`` command: check, inspect and prepare experiments without training anything,
and ``deeppipe tune``, one worker of a hyperparameter search."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")


def _params(items: tuple[str, ...]) -> dict:
    """--params as ``kedro run`` reads them (deeppipe.spec.overrides, shared with deeppipe.cli)."""
    from deeppipe.spec.overrides import parse_params

    return parse_params(items)


def _shape(text: str) -> tuple[int, ...]:
    from deeppipe.errors import SpecError

    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(v < 1 for v in shape):
        raise SpecError("--input is the per-sample shape", expected="positive whole numbers like 3,32,32 or 30",
                        found=text)
    return shape


def _resolve_experiment(target: str) -> Path:
    from deeppipe.layout import resolve_experiment

    return resolve_experiment(target)


def _auto_resized(rs: Any) -> str | None:
    """The line that says the images are resized to a pretrained network's size (no data.resize given)."""
    from deeppipe.spec.source_size import resized_automatically

    size = resized_automatically(rs)
    if size is None:
        return None
    return (f"data: images resized to {size[0]}x{size[1]} automatically, the input size of the pretrained "
            f"network ({rs.spec.model.pretrained.source}); set data.resize to choose another")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """deeppipe: one YAML file per deep-learning experiment (run them with `kedro run --pipeline NAME`)."""
    from deeppipe.fast_exit import arm

    arm()  # a command that exits 0 skips CPython's teardown (deeppipe.fast_exit)


@main.command()
@click.argument("spec")
@click.option("--params", "params", multiple=True, help="Override a key: train.epochs=3 (repeatable).")
def validate(spec: str, params: tuple[str, ...]) -> None:
    """Check SPEC (a file or an experiment name) against its data and network, running nothing."""
    from deeppipe.spec.checks import check_experiment, describe
    from deeppipe.spec.loader import load_spec, validate_search

    path = _resolve_experiment(spec)
    rs = load_spec(path, _params(params), check_model=False)
    facts = describe(check_experiment(rs.spec, file=rs.file))
    validate_search(rs.raw, rs.spec, file=rs.file, check_model=True)  # tune: each sample against the data
    what = f"{facts['classes']} classes" if facts["classes"] else facts["task"]
    n_train, n_val, n_test = facts["split"]
    click.echo(f"{path}: OK ({rs.name}, spec hash {rs.hash}): {what}, input {facts['input']}, "
               f"{facts['parameters']:,} parameters, split {n_train}/{n_val}/{n_test}")
    if (note := _auto_resized(rs)) is not None:
        click.echo(f"  {note}")
    if rs.spec.tune is not None:
        from deeppipe.tuning.study import describe_search

        click.echo(f"  search: {describe_search(rs)}")
    if rs.spec.ensemble is not None:
        from deeppipe.ensemble.plan import plan_members

        plans = plan_members(rs.spec, file=rs.file)
        click.echo(f"  ensemble: {rs.spec.ensemble.method.name} of {len(plans)} members "
                   f"({', '.join(p.name for p in plans)}), each validated as an experiment")


@main.command()
@click.argument("spec")
@click.option("--params", "params", multiple=True, help="Override a key: train.epochs=3 (repeatable).")
@click.option("--storage", help="An Optuna storage URL (postgresql://...): tune.storage for this worker.")
@click.option("--trials", type=int, help="tune.n_trials: the study's budget, shared by all its workers.")
@click.option("--mlflow", "track", is_flag=True,
              help="Track this worker: an MLflow run (MLFLOW_TRACKING_URI, default sqlite:///mlflow.db) with a child per trial.")
def tune(spec: str, params: tuple[str, ...], storage: str | None, trials: int | None, track: bool) -> None:
    """One search worker for SPEC's tune: section, without Kedro: start it on several machines (or
    several times here) with the same database storage to share one study. `kedro run --pipeline
    NAME --tags tune` is the same search as a tracked pipeline stage."""
    from deeppipe.data.stage import ingest, split
    from deeppipe.io import PngFolderDataset, YamlDataset
    from deeppipe.layout import artefact
    from deeppipe.spec.loader import load_spec
    from deeppipe.tuning.stage import tune as search

    overrides = _params(params) | ({"tune.storage": storage} if storage else {}) | (
        {"tune.n_trials": trials} if trials else {})
    rs = load_spec(_resolve_experiment(spec), overrides, check_model=False)
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    if track:
        import platform

        import mlflow

        from deeppipe.tracking.mlflow_tracker import MlflowTracker

        mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"))
        _mlflow_experiment(rs.name)
        with mlflow.start_run(run_name=f"tune worker {platform.node()}:{os.getpid()}"):
            result = search(rs, samples, parts, folder=artefact(rs.name, "study"), tracker=MlflowTracker())
    else:
        result = search(rs, samples, parts, folder=artefact(rs.name, "study"))
    YamlDataset(str(artefact(rs.name, "best_params"))).save(result.best)
    PngFolderDataset(str(artefact(rs.name, "tune_plots"))).save(result.plots)
    best = result.best
    click.echo(f"{rs.name}: this worker ran {result.ran} trials; study {best['study']} has {best['trials']}; "
               f"trial {best['trial']} wins with {best['values']} {best['params']}")


def _mlflow_experiment(name: str) -> None:
    """Set (or create) the experiment; workers started together on a new tracking database race to
    create its tables and the experiment: the losers try again and find them."""
    import random
    import time

    import mlflow

    for attempt in range(8):
        try:
            mlflow.set_experiment(name)
            return
        except Exception:
            if attempt == 7:
                raise
            time.sleep(0.5 * (attempt + 1) + random.random())


@main.command()
@click.argument("target")
@click.option("--input", "input_shape", help="Input shape C,H,W (or F for tables); default: from the data.")
@click.option("--num-classes", type=int, help="Head size; default: from the data.")
@click.option("--graph", type=click.Path(dir_okay=False), help="Also write a picture of the network (PNG).")
def summary(target: str, input_shape: str | None, num_classes: int | None, graph: str | None) -> None:
    """Layer table of an experiment's network, or of a zoo model (zoo:resnet18)."""
    from deeppipe.models import build_model, summarize

    shape = _shape(input_shape) if input_shape else None
    file = None
    if target.startswith("zoo:"):
        model = build_model({"zoo": target[4:]}, shape, num_classes, device="meta")
    else:
        from deeppipe.spec.loader import load_spec

        path = _resolve_experiment(target)
        rs = load_spec(path, check_model=False)
        file = rs.file
        if shape is None and num_classes is None:  # the network exactly as a run builds it
            from deeppipe.spec.checks import check_experiment

            model = check_experiment(rs.spec, file=file).model
        else:
            from deeppipe.data.sources import peek

            info = peek(rs.spec.data.source)
            outputs = num_classes if num_classes is not None else info.task.num_outputs
            model = build_model(rs.spec.model, shape or info.sample_shape, outputs, file=file, device="meta")
    shape = shape or tuple(getattr(model, "input_shape", ()))
    s = summarize(model, shape)
    click.echo(s.table())
    if not target.startswith("zoo:") and (note := _auto_resized(rs)) is not None:
        click.echo(note)
    if graph:
        from deeppipe.models import draw_graph

        draw_graph(model, shape, graph)
        click.echo(f"graph written to {graph}")


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
def schema(output: str | None) -> None:
    """JSON Schema of the experiment spec (for editor completion)."""
    from deeppipe.spec.schema import ExperimentSpec

    text = json.dumps(ExperimentSpec.model_json_schema(), indent=2)
    if output:
        from deeppipe.files import atomic_write

        atomic_write(Path(output), text + "\n")
        click.echo(f"schema written to {output}")
    else:
        click.echo(text)


@main.command()
@click.option("--check", is_flag=True, help="Fail (exit 1) if dvc.yaml is not up to date.")
@click.option("--pipelines", "pipelines_dir", default="pipelines", show_default=True)
@click.option("--output", default="dvc.yaml", show_default=True)
def dvc(check: bool, pipelines_dir: str, output: str) -> None:
    """Generate dvc.yaml from pipelines/*.yml."""
    from deeppipe.dvcgen import write_dvc_yaml

    ok = write_dvc_yaml(Path(pipelines_dir), Path(output), check=check)
    if check and not ok:
        raise click.ClickException(f"{output} is stale: run `deeppipe dvc` to regenerate it from {pipelines_dir}/")
    click.echo(f"{output} is up to date" if check else f"{output} written")


FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@main.command()
@click.argument("name", type=click.Choice(["fashion-mnist"]))
@click.option("--from", "source", type=click.Path(file_okay=False, exists=True),
              help="Copy from this folder instead of Debian's dataset-fashion-mnist package.")
@click.option("--dest", default="data/01_raw/fashion-mnist", show_default=True)
@click.option("--no-dvc", is_flag=True, help="Do not `dvc add` the folder.")
def data(name: str, source: str | None, dest: str, no_dvc: bool) -> None:
    """Put a known data set into data/01_raw and track it with DVC."""
    target = Path(dest)
    if source is None:
        source = _debian_fashion_mnist()
    src = Path(source)
    missing = [f for f in FASHION_FILES if not (src / f).is_file()]
    if missing:
        raise click.ClickException(f"{src}: missing {', '.join(missing)}")
    from deeppipe.files import atomic_write

    for f in FASHION_FILES:
        atomic_write(target / f, (src / f).read_bytes())
    click.echo(f"{name}: {len(FASHION_FILES)} files in {target}")
    if not no_dvc:
        venv_dvc = Path(sys.executable).with_name("dvc")
        dvc_bin = str(venv_dvc) if venv_dvc.exists() else shutil.which("dvc")
        if dvc_bin is None:
            click.echo("dvc not found: track the folder later with `dvc add " + str(target) + "`")
        else:
            subprocess.run([dvc_bin, "add", str(target)], check=True)


def _debian_fashion_mnist() -> str:
    """Download Debian's dataset-fashion-mnist package (no root needed) and unpack it."""
    tmp = Path(tempfile.mkdtemp(prefix="fashion-mnist-"))
    try:
        subprocess.run(["apt-get", "download", "dataset-fashion-mnist"], cwd=tmp, check=True)
        deb = next(tmp.glob("dataset-fashion-mnist_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "out")], check=True)
    except (OSError, subprocess.CalledProcessError, StopIteration) as exc:
        raise click.ClickException(
            f"could not get Debian's dataset-fashion-mnist package ({exc}); download the four *-ubyte.gz files "
            "from https://github.com/zalandoresearch/fashion-mnist and pass --from DIR") from None
    return str(tmp / "out" / "usr" / "share" / "datasets" / "fashion-mnist")


@main.command()
@click.argument("experiment")
@click.option("--n", "count", default=16, show_default=True, help="How many samples.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="PNG path (default data/08_reporting/...).")
def preview(experiment: str, count: int, output: str | None) -> None:
    """Grid of original vs augmented training samples, before any training."""
    from deeppipe.augment.preview import write_preview
    from deeppipe.data.stage import ingest
    from deeppipe.layout import artefact
    from deeppipe.spec.loader import load_spec

    path = _resolve_experiment(experiment)
    rs = load_spec(path, check_model=False)
    samples = ingest(rs.spec)
    out = Path(output) if output else artefact(rs.name, "train_plots") / "augmentation_preview.png"
    write_preview(rs.spec.augment, samples.x, out, n=count, seed=rs.spec.seed)
    click.echo(f"preview written to {out}")


@main.command()
@click.argument("experiment")
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript"]), default="onnx", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), help="File to write (default: beside the model folder).")
def export(experiment: str, fmt: str, output: str | None) -> None:
    """Export EXPERIMENT's trained model (one network or an ensemble) as ONNX or TorchScript, checked
    against PyTorch on the test split (within 1e-4) and logged to the MLflow run that trained it."""
    from deeppipe.export import export_experiment

    result = export_experiment(experiment, fmt, output)
    click.echo(f"{result.path} ({result.format}): matches PyTorch on {result.samples} test samples "
               f"(max abs difference {result.max_abs_diff:.2e})")


@main.command(name="list")
def list_experiments() -> None:
    """The experiments in pipelines/ (each is a Kedro pipeline)."""
    from deeppipe.layout import experiment_files
    from deeppipe.spec.loader import read_yaml

    for name, path in experiment_files().items():
        desc = read_yaml(path).get("description", "")
        click.echo(f"{name:28s} {desc}")


if __name__ == "__main__":
    sys.exit(main())
