"""The one-file HTML report of a real run opens in a real headless Chromium from the file alone:
the screenshot is not blank, and every image decodes in the browser (none missing or broken)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from deeppipe.evaluation.html_report import build_report
from deeppipe.spec.loader import ResolvedSpec, validate
from deeppipe.stages import run_experiment

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no Chromium on this machine (apt-get install chromium)")
RAW = {"seed": 3, "description": "report test",
       "data": {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.1, "test": 0.2}},
       "model": {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 16}}, {"ReLU": {}},
                            {"Linear": {"out_features": 10}}]},
       "train": {"epochs": 2, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01}, "progress": False}}
# run in the page by the browser: how many images failed to decode (naturalWidth 0)
PROBE = ("<script>window.addEventListener('load',()=>{const b=[...document.images].filter(i=>!i.complete||"
         "i.naturalWidth===0).length;document.body.setAttribute('data-images',document.images.length);"
         "document.body.setAttribute('data-broken',b);});</script></body>")


@pytest.fixture(scope="module")
def trained() -> tuple:
    rs = ResolvedSpec("digits_report", "pipelines/digits_report.yml", validate(RAW, check_model=False,
                                                                                check_data=False), RAW)
    return rs, run_experiment(rs)


@pytest.fixture(scope="module")
def report(trained: tuple, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rs, run = trained
    page = build_report(rs, run.trained.artifact, run.samples, run.split, metrics=run.evaluation.metrics,
                        history=run.trained.history, plots={**run.trained.plots, **run.evaluation.plots},
                        per_class=run.evaluation.per_class)
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def test_the_report_holds_every_section_and_inlines_every_image(report: Path) -> None:
    from PIL import Image

    page = report.read_text(encoding="utf-8")
    for heading in ("Test metrics", "Per class", "Plots", "Data", "Model", "Resolved spec", "Training"):
        assert f"<h2>{heading}" in page, heading
    assert "http://" not in page and "https://" not in page  # nothing fetched: one file
    sources = re.findall(r"<img [^>]*src='([^']+)'", page)
    names = re.findall(r"<figcaption>([^<]+)</figcaption>", page)
    assert {"loss curves", "confusion matrix", "confusion matrix normalized", "roc", "precision recall",
            "reliability"} <= set(names)
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        image.verify()
        assert image.size[0] > 100


@needs_browser
def test_the_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "shot.png"
    args = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2000"]
    subprocess.run([*args, f"--screenshot={shot}", report.as_uri()], check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 20  # not a blank page
    assert len(np.unique(pixels.reshape(-1, 3)[::7], axis=0)) > 200  # text, tables and plots, not one colour
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE), encoding="utf-8")
    dom = subprocess.run([*args, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    broken = int(re.search(r'data-broken="(\d+)"', dom).group(1))
    assert images >= 6 and broken == 0


def test_member_boosting_and_cross_validation_tables(trained: tuple) -> None:
    rs, run = trained
    members = {"method": "samme", "rows": [{"model": "round_0", "weight": 2.5, "accuracy": 0.9},
                                           {"model": "ensemble", "weight": None, "accuracy": 0.95}],
               "disagreement": {"names": ["round_0"], "matrix": [[0.0]], "measure": "share of labels that differ",
                                "mean": 0.0},
               "combination": {"info": {"n_classes": 10, "rounds": [
                   {"round": 0, "error": 0.1, "alpha": 2.5, "kept": 1.0},
                   {"round": 1, "error": 0.95, "alpha": 0.0, "kept": 0.0}]}}}
    cv = {"folds": 2, "stratified": True, "rows": [{"fold": 1, "samples": 600, "accuracy": 0.9},
                                                  {"fold": 2, "samples": 600, "accuracy": 0.8}],
          "mean": {"accuracy": 0.85}, "std": {"accuracy": 0.05}}
    page = build_report(rs, run.trained.artifact, run.samples, run.split, metrics=run.evaluation.metrics,
                        history=None, plots={}, members=members, cv=cv)
    assert "Members and the ensemble (samme, same test split)" in page and "Boosting rounds" in page
    assert "<td>0.9500</td>" in page and "<td>False</td>" in page  # the dropped round is shown as dropped
    assert "2-fold cross-validation on the training split (stratified)" in page
    assert "<td>mean</td><td></td><td>0.8500</td>" in page and "<td>std</td><td></td><td>0.0500</td>" in page


def test_a_regression_report_has_its_own_plots() -> None:
    raw = {**RAW, "data": {"source": {"type": "sklearn", "name": "diabetes"}, "split": {"val": 0.1, "test": 0.2}},
           "model": {"layers": [{"Linear": {"out_features": 8}}, {"ReLU": {}}, {"Linear": {"out_features": 1}}]},
           "train": {**RAW["train"], "loss": {"name": "mse"}}}
    rs = ResolvedSpec("diab_report", "pipelines/diab_report.yml", validate(raw, check_model=False, check_data=False),
                      raw)
    run = run_experiment(rs)
    page = build_report(rs, run.trained.artifact, run.samples, run.split, metrics=run.evaluation.metrics,
                        history=run.trained.history, plots=run.evaluation.plots)
    names = set(re.findall(r"<figcaption>([^<]+)</figcaption>", page))
    assert {"predicted vs true", "residuals", "loss curves"} <= names and "roc" not in names
    assert "<td>rmse</td>" in page and "class counts" not in page
