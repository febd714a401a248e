"""One self-contained HTML report per run: the metrics, every plot (PNG inlined as data: URIs),
the member-vs-ensemble table, the model summary, the data summary and the resolved spec. It
opens in a browser from the file alone (no network, no scripts) and is logged to the MLflow run.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from typing import TYPE_CHECKING, Any

import numpy as np

from deeppipe.tracking.tracker import NullTracker, Tracker, log_bytes

if TYPE_CHECKING:
    from deeppipe.data.sources import Samples
    from deeppipe.data.stage import Split
    from deeppipe.spec.loader import ResolvedSpec

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1f3a5f;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;opacity:.85;font-size:13px}main{padding:8px 28px 40px;max-width:1400px}
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;margin:18px 0;padding:14px 18px}
h2{font-size:17px;margin:4px 0 12px;color:#1f3a5f}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #dde1e7;padding:4px 9px;text-align:right}th{background:#eef1f5}
td:first-child,th:first-child{text-align:left}tr.best td{font-weight:600;background:#eaf5ea}
.plots{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0;max-width:640px}
figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:12px;color:#555;text-align:center}
pre{background:#f3f4f6;padding:10px;border-radius:6px;font-size:12px;overflow:auto;max-height:480px}
.kv td{text-align:left}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}"
    return _e(v)


def _table(header: list[str], rows: list[list[Any]], *, best: int | None = None, cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(f"<tr{' class=best' if i == best else ''}>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>"
                   for i, r in enumerate(rows))
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    title = name.replace("_", " ")
    return f"<figure><img alt='{_e(title)}' src='data:image/png;base64,{data}'><figcaption>{_e(title)}</figcaption></figure>"


def data_summary(samples: Samples, split: Split) -> list[list[Any]]:
    task = samples.task
    rows: list[list[Any]] = [["task", task.kind], ["samples", len(samples.x)], ["sample shape", list(samples.sample_shape)],
                             ["train / val / test", f"{len(split.train)} / {len(split.val)} / {len(split.test)}"]]
    if task.is_classification:
        y = samples.targets().astype(np.int64).reshape(-1)
        names = list(task.class_names) or [str(i) for i in range(task.num_classes)]
        for part in ("train", "val", "test"):
            idx = getattr(split, part)
            if len(idx):
                counts = np.bincount(y[idx], minlength=len(names))
                rows.append([f"{part} class counts", ", ".join(f"{n}: {c}" for n, c in zip(names, counts))])
    return rows


def model_summary(artifact: Any) -> str:
    """The layer table of the network (each member's, for an ensemble)."""
    from deeppipe.models import summarize

    net = artifact.build()
    shape = tuple(artifact.input_shape)
    members = getattr(net, "members", None)
    parts = [(n, m) for n, m in zip(artifact.member_names, members)] if members is not None else [("model", net)]
    out = []
    for name, sub in parts:
        try:
            out.append(f"{name}:\n{summarize(sub.body, shape).table()}")
        except Exception as exc:  # the summary is a convenience: never fail the report over it
            out.append(f"{name}: summary unavailable ({exc})")
    return "\n\n".join(out)


def _members_section(members: dict[str, Any]) -> str:
    rows = members["rows"]
    keys = [k for k in rows[-1] if k not in ("model", "weight")]
    table = _table(["model", "weight", *keys], [[r["model"], r.get("weight"), *[r.get(k) for k in keys]] for r in rows],
                   best=len(rows) - 1)
    d = members["disagreement"]
    grid = _table(["", *d["names"]], [[n, *row] for n, row in zip(d["names"], d["matrix"])])
    info = dict(members.get("combination", {}).get("info") or {})
    rounds = info.pop("rounds", None)
    fitted = _table(["", ""], [[k, v] for k, v in info.items()], cls="kv") if info else ""
    boosting = (f"<h2>Boosting rounds</h2>{_table(['round', 'weighted error', 'alpha', 'kept'], [[r['round'], r['error'], r['alpha'], bool(r['kept'])] for r in rounds])}"
                if rounds else "")
    return (f"<section><h2>Members and the ensemble ({_e(members.get('method'))}, same test split)</h2>{table}"
            f"{fitted}{boosting}<h2>Pairwise disagreement ({_e(d['measure'])}; mean {d['mean']:.4f})</h2>{grid}"
            "</section>")


def _cv_section(cv: dict[str, Any]) -> str:
    rows = cv["rows"]
    keys = list(cv["mean"])
    body = [[r["fold"], r["samples"], *[r.get(k) for k in keys]] for r in rows]
    body += [["mean", "", *[cv["mean"][k] for k in keys]], ["std", "", *[cv["std"][k] for k in keys]]]
    return (f"<section><h2>{cv['folds']}-fold cross-validation on the training split"
            f"{' (stratified)' if cv.get('stratified') else ''}</h2>{_table(['fold', 'samples', *keys], body)}</section>")


def build_report(rs: ResolvedSpec, artifact: Any, samples: Samples, split: Split, *, metrics: dict[str, Any],
                 history: list[dict[str, Any]] | None, plots: dict[str, bytes], members: dict[str, Any] | None = None,
                 cv: dict[str, Any] | None = None, per_class: dict[str, Any] | None = None,
                 tracker: Tracker | None = None) -> str:
    """The report as one HTML string (and ``report.html`` in the run's artifacts)."""
    tracker = tracker or NullTracker()
    test = metrics.get("test", {})
    where = metrics.get("evaluated_on", {})
    train = metrics.get("train", {})
    meta = artifact.meta
    kind = f"ensemble ({meta['ensemble'].get('method')}, {len(meta['ensemble']['members'])} members)" \
        if "ensemble" in meta else "single model"
    head = (f"<header><h1>{_e(rs.name)}</h1><p>{_e(rs.spec.description or '')}</p>"
            f"<p>{_e(kind)} · spec {_e(rs.hash)} · data {_e(meta.get('data_sha256'))} · MLflow run "
            f"{_e(meta.get('mlflow_run_id'))} · {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}</p></header>")
    sections = [f"<section><h2>Test metrics ({_e(where.get('split', 'test'))}, {_e(where.get('samples', ''))} samples)"
                f"</h2>{_table(['metric', 'value'], [[k, v] for k, v in test.items()])}"
                + (f"<p>weights from epoch {_e(train['weights_epoch'])} of {_e(train.get('epochs_run'))}</p>"
                   if train.get("weights_epoch") is not None else "") + "</section>"]
    rows = {k: v for k, v in (per_class or {}).items() if isinstance(v, dict)}
    if rows:
        keys = list(dict.fromkeys(k for v in rows.values() for k in v))
        sections.append(f"<section><h2>Per class</h2>{_table(['class', *keys], [[n, *[v.get(k) for k in keys]] for n, v in rows.items()])}</section>")
    if members:
        sections.append(_members_section(members))
    if cv:
        sections.append(_cv_section(cv))
    if plots:
        sections.append("<section><h2>Plots</h2><div class=plots>" +
                        "".join(_img(n, p) for n, p in sorted(plots.items())) + "</div></section>")
    if history:
        last = history[-1]
        sections.append(f"<section><h2>Training (last epoch)</h2>"
                        f"{_table(['series', 'value'], [[k, v] for k, v in last.items()])}</section>")
    sections.append(f"<section><h2>Data</h2>{_table(['', ''], data_summary(samples, split), cls='kv')}</section>")
    sections.append(f"<section><h2>Model</h2><pre>{_e(model_summary(artifact))}</pre></section>")
    sections.append(f"<section><h2>Resolved spec</h2><pre>{_e(rs.resolved_yaml())}</pre></section>")
    page = (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_e(rs.name)}: deeppipe report</title>"
            f"<style>{CSS}</style></head><body>{head}<main>{''.join(sections)}</main></body></html>")
    log_bytes(tracker, "report.html", page)
    return page
