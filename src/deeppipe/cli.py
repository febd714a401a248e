"""Kedro's project CLI for deeppipe: ``kedro run`` with deeppipe's ``--params`` parser and console.

Kedro splits ``--params`` at every comma, so ``train.optimizer.betas=[0.9,0.99]`` cannot be
given; deeppipe's parser (``deeppipe.spec.overrides``, also used by ``deeppipe validate``)
splits only at top-level commas and reads values as YAML. Everything else is Kedro's own ``run``
(Kedro loads this module's ``cli`` group over its built-in commands).
"""

from __future__ import annotations

import copy
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

from deeppipe.errors import SpecError


def _parse_params(ctx: click.Context, param: click.Parameter, value: Any) -> dict[str, Any]:
    from deeppipe import pipeline_registry
    from deeppipe.spec.overrides import parse_params

    if isinstance(value, dict):
        return value
    try:
        parsed = parse_params(value or None)
    except SpecError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param) from None
    pipeline_registry.RUNTIME_OVERRIDES.clear()
    pipeline_registry.RUNTIME_OVERRIDES.update(parsed)
    return parsed


def _deeppipe_run(command: click.Command) -> click.Command:
    """Kedro's run with deeppipe's --params parser, ``--pipeline`` taken as ``--pipelines`` (the
    spelling the docs use, without Kedro's deprecation warning) and a ``--verbose`` flag."""
    cmd = copy.copy(command)
    cmd.params = []
    for p in command.params:
        p = copy.copy(p)
        if p.name == "params":
            p.callback = _parse_params
        cmd.params.append(p)
    cmd.params.append(click.Option(["--verbose", "-v"], is_flag=True,
                                   help="Also show Kedro's dataset and node lines and third-party warnings."))
    kedro_callback = command.callback

    def callback(*, pipeline: str | None = None, pipelines: list[str] | None = None, verbose: bool = False,
                 **kwargs: Any) -> Any:
        from deeppipe.console import configure

        configure(verbose=verbose)
        if pipeline:
            pipelines = [*(pipelines or []), *(p.strip() for p in pipeline.split(",") if p.strip())]
        result = kedro_callback(pipeline=None, pipelines=pipelines or [], **kwargs)
        from deeppipe.fast_exit import arm

        arm()  # the run succeeded: exit without CPython's seconds of teardown (deeppipe.fast_exit)
        return result

    cmd.callback = callback
    return cmd


@click.group(name="deeppipe")
def cli() -> None:
    """deeppipe's project commands."""


cli.add_command(_deeppipe_run(kedro_run), "run")
