"""Kedro's project CLI for deeppipe: ``kedro run`` with deeppipe's ``--params`` parser.

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


def _with_params_parser(command: click.Command) -> click.Command:
    cmd = copy.copy(command)
    cmd.params = []
    for p in command.params:
        p = copy.copy(p)
        if p.name == "params":
            p.callback = _parse_params
        cmd.params.append(p)
    return cmd


@click.group(name="deeppipe")
def cli() -> None:
    """deeppipe's project commands."""


cli.add_command(_with_params_parser(kedro_run), "run")
