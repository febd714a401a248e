"""The ``deeppipe`` command: check, inspect and prepare experiments without training anything."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")


def _parse_params(items: tuple[str, ...]) -> dict:
    """``key.path=value`` pairs, values read as YAML scalars (3 -> int, 0.1 -> float, true -> bool)."""
    import yaml

    from deeppipe.errors import SpecError

    out = {}
    for item in items:
        for part in item.split(","):
            if "=" not in part:
                raise SpecError("an override must look like key.path=value", found=part)
            key, _, value = part.partition("=")
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return out


def _resolve_experiment(target: str) -> Path:
    p = Path(target)
    if p.suffix in (".yml", ".yaml") or p.exists():
        return p
    from deeppipe.errors import SpecError
    from deeppipe.pipeline_registry import experiment_files

    files = experiment_files()
    if target in files:
        return files[target]
    raise SpecError("no such experiment", expected=f"a file or one of {', '.join(files)}", found=target,
                    candidates=list(files))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """deeppipe: one YAML file per deep-learning experiment (run them with `kedro run --pipeline NAME`)."""


@main.command()
@click.argument("spec")
@click.option("--params", "params", multiple=True, help="Override a key: train.epochs=3 (repeatable).")
def validate(spec: str, params: tuple[str, ...]) -> None:
    """Check SPEC (a file or an experiment name) without running anything."""
    from deeppipe.spec.loader import load_spec

    path = _resolve_experiment(spec)
    rs = load_spec(path, _parse_params(params))
    click.echo(f"{path}: OK ({rs.name}, spec hash {rs.hash})")


@main.command()
@click.argument("target")
@click.option("--input", "input_shape", help="Input shape C,H,W (or F for tables); default: from the data.")
@click.option("--num-classes", type=int, help="Head size; default: from the data.")
@click.option("--graph", type=click.Path(dir_okay=False), help="Also write a picture of the network (PNG).")
def summary(target: str, input_shape: str | None, num_classes: int | None, graph: str | None) -> None:
    """Layer table of an experiment's network, or of a zoo model (zoo:resnet18)."""
    from deeppipe.models import build_model, summarize

    if target.startswith("zoo:"):
        model_spec: dict = {"zoo": target[4:]}
        shape = tuple(int(s) for s in input_shape.split(",")) if input_shape else None
        outputs = num_classes
        file = None
    else:
        from deeppipe.data.sources import peek
        from deeppipe.spec.loader import load_spec

        path = _resolve_experiment(target)
        rs = load_spec(path, check_model=False)
        model_spec = rs.spec.model
        info = peek(rs.spec.data.source) if not input_shape else None
        shape = tuple(int(s) for s in input_shape.split(",")) if input_shape else info.sample_shape
        outputs = num_classes if num_classes is not None else (info.task.num_outputs if info else None)
        file = str(path)
    model = build_model(model_spec, shape, outputs, file=file, device="meta")
    s = summarize(model, shape if shape else tuple(getattr(model, "input_shape", ())))

    click.echo(s.table())
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
        from deeppipe.io import atomic_write_text

        atomic_write_text(Path(output), text + "\n")
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
    target.mkdir(parents=True, exist_ok=True)
    for f in FASHION_FILES:
        tmp = target / f".{f}.tmp"
        shutil.copyfile(src / f, tmp)
        os.replace(tmp, target / f)
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
    from deeppipe.augment import write_preview
    from deeppipe.data.sources import load_source
    from deeppipe.spec.loader import load_spec

    path = _resolve_experiment(experiment)
    rs = load_spec(path, check_model=False)
    raw = load_source(rs.spec.data.source, on_error=rs.spec.data.on_error, limit=rs.spec.data.limit)
    out = Path(output or f"data/08_reporting/{rs.name}/augmentation_preview.png")
    write_preview(rs.spec.augment, raw.x, out, n=count, seed=rs.spec.seed)
    click.echo(f"preview written to {out}")


@main.command(name="list")
def list_experiments() -> None:
    """The experiments in pipelines/ (each is a Kedro pipeline)."""
    from deeppipe.pipeline_registry import experiment_files
    from deeppipe.spec.loader import read_yaml

    for name, path in experiment_files().items():
        desc = read_yaml(path).get("description", "")
        click.echo(f"{name:28s} {desc}")


if __name__ == "__main__":
    sys.exit(main())
