"""What a user reads during a run: one stream (stdout), lines that do not wrap in a log file.

Kedro's rich handler (conf/logging.yml) draws a terminal well, but without one it wraps every
line at 80 columns while tqdm's epoch lines go to stderr. ``configure`` (called by deeppipe's
``kedro run``) keeps rich in a terminal and writes plain, unwrapped lines to stdout otherwise;
``--verbose`` brings back Kedro's dataset and node lines and third-party warnings.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from kedro.framework.hooks import hook_impl


class PlainFormatter(logging.Formatter):
    """``message`` for information, ``LEVEL: message`` for anything louder."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno <= logging.INFO else f"{record.levelname}: {text}"


def configure(*, verbose: bool = False) -> None:
    """Adjust the logging Kedro configured from conf/logging.yml for this process.

    kedro-mlflow and MLflow set their own loggers to INFO when they are imported (after Kedro
    applied the file), so their levels are set again here; MLflow's artifact progress bars
    (one per model logged) are turned off unless the user asked for them."""
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    level = logging.INFO if verbose else logging.WARNING
    for name in ("kedro", "kedro_mlflow", "mlflow"):
        logging.getLogger(name).setLevel(level)
    if verbose:
        logging.getLogger("py.warnings").setLevel(logging.WARNING)
    if sys.stdout.isatty():
        return
    root = logging.getLogger()
    plain = logging.StreamHandler(sys.stdout)
    plain.setFormatter(PlainFormatter("%(message)s"))
    for handler in list(root.handlers):
        if type(handler).__module__.startswith(("rich", "kedro")):
            root.removeHandler(handler)
    root.addHandler(plain)


class ConsoleHooks:
    """Prints each evaluated experiment's summary table after the whole run, so it comes last,
    below the registry's decision, with that decision in it."""

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], run_result: Any, pipeline: Any, catalog: Any) -> None:
        from deeppipe.evaluation.report import print_summary

        names = {n.name for n in pipeline.nodes}
        for name in sorted(names):
            if not name.endswith(".evaluate"):
                continue
            experiment = name.rsplit(".", 1)[0]
            registry = catalog.load(f"{experiment}.registry") if f"{experiment}.register" in names else None
            print_summary(experiment, catalog.load(f"{experiment}.metrics"), registry)
