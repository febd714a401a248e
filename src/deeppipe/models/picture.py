"""A picture of a built network's graph, drawn with matplotlib (no graphviz binary needed).

It takes the module ``build_model`` returned (or any ``nn.Module``), never a spec. Nodes are the
entries of the spec's layer list (blocks and repeated entries are one box each),
placed in rows by their longest distance from the input; edges follow ``from:``. Skip
connections that jump several rows are drawn as arcs so they do not cross the boxes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.nn as nn

from deeppipe.models.layer_graph import LayerGraph
from deeppipe.models.meta import layer_type
from deeppipe.models.shapes import fmt
from deeppipe.models.summary import summarize


def _graph_of(
    model: nn.Module, input_shape: tuple[int, ...] | None
) -> tuple[list[str], list[tuple[int, ...]]]:
    """(labels, inputs per node) with node 0 the input; a LayerGraph has its own graph."""
    if isinstance(model, LayerGraph):
        labels = [f"input\n{fmt(model.input_shape)}"]
        for info in model.infos:
            labels.append(f"{info.name}: {info.type}\n{fmt(info.shape)}")
        inputs = [()] + [tuple(j + 1 for j in inp) for inp in model.node_inputs]
        labels.append("output")
        inputs.append((model.output_index + 1,))
        return labels, inputs
    # any other module: its children as a chain, with shapes from a summary pass
    shapes: dict[str, Any] = {}
    if input_shape is not None:
        try:
            for row in summarize(model, input_shape).rows:
                shapes[row.name] = row.output_shape
        except Exception:
            shapes = {}
    labels = [f"input\n{fmt(input_shape)}" if input_shape else "input"]
    inputs: list[tuple[int, ...]] = [()]
    for name, child in model.named_children():
        shape = shapes.get(name)
        labels.append(f"{name}: {layer_type(child)}" + (f"\n{fmt(shape)}" if shape else ""))
        inputs.append((len(labels) - 2,))
    if len(labels) == 1:
        labels.append(type(model).__name__)
        inputs.append((0,))
    labels.append("output")
    inputs.append((len(labels) - 2,))
    return labels, inputs


def draw_graph(model: nn.Module, input_shape: tuple[int, ...] | None, path: str | Path) -> Path:
    """Write the picture of a built ``model``; the format follows the suffix (.png, .svg, .pdf).

    ``input_shape`` (one sample's) labels the input; a LayerGraph knows its own."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"draw_graph takes a built model (build_model(spec, ...)), not a {type(model).__name__}")
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "svg", "pdf", "cairo"):
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    if input_shape is None and isinstance(model, LayerGraph):
        input_shape = model.input_shape
    labels, inputs = _graph_of(model, tuple(input_shape) if input_shape else None)

    level = [0] * len(labels)
    for k in range(1, len(labels)):
        level[k] = 1 + max((level[j] for j in inputs[k]), default=-1)
    rows: dict[int, list[int]] = {}
    for k, lv in enumerate(level):
        rows.setdefault(lv, []).append(k)
    width = max(len(r) for r in rows.values())
    box_w, box_h, gap_x, gap_y = 2.6, 0.55, 0.4, 0.45
    pos = {}
    for lv, members in rows.items():
        total = len(members) * box_w + (len(members) - 1) * gap_x
        x0 = (width * (box_w + gap_x) - gap_x - total) / 2
        for i, k in enumerate(members):
            pos[k] = (x0 + i * (box_w + gap_x) + box_w / 2, -lv * (box_h + gap_y))
    fig_w = max(4.0, width * (box_w + gap_x) + 2.0)
    fig_h = max(2.0, len(rows) * (box_h + gap_y) + 0.6)
    fig, ax = plt.subplots(figsize=(fig_w, min(fig_h, 600.0)))
    for k, lab in enumerate(labels):
        x, y = pos[k]
        face = "#dbe9f6" if k in (0, len(labels) - 1) else "#f5f5f5"
        ax.add_patch(
            FancyBboxPatch(
                (x - box_w / 2, y - box_h / 2),
                box_w,
                box_h,
                boxstyle="round,pad=0.02,rounding_size=0.08",
                fc=face,
                ec="#444444",
                lw=0.8,
            )
        )
        ax.text(x, y, lab, ha="center", va="center", fontsize=7, family="monospace")
    for k, inp in enumerate(inputs):
        for j in inp:
            (x1, y1), (x2, y2) = pos[j], pos[k]
            if level[k] - level[j] <= 1:
                start, end, style = (x1, y1 - box_h / 2), (x2, y2 + box_h / 2), "arc3,rad=0.0"
            else:  # a skip connection: leave and enter by the side, curving around the boxes between
                side = 1 if x2 >= x1 else -1
                start, end = (x1 + side * box_w / 2, y1), (x2 + side * box_w / 2, y2)
                style = f"arc3,rad={-0.3 * side}"
            ax.annotate(
                "",
                xy=end,
                xytext=start,
                arrowprops={
                    "arrowstyle": "-|>",
                    "lw": 0.8,
                    "color": "#333333",
                    "connectionstyle": style,
                    "shrinkA": 1,
                    "shrinkB": 1,
                },
            )
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    longest = max(
        (
            abs(pos[k][1] - pos[j][1])
            for k, inp in enumerate(inputs)
            for j in inp
            if level[k] - level[j] > 1
        ),
        default=0.0,
    )
    margin = box_w / 2 + 0.2 * longest + 0.3  # room for the arcs of skip connections
    ax.set_xlim(min(xs) - margin, max(xs) + margin)
    ax.set_ylim(min(ys) - box_h, max(ys) + box_h)
    ax.set_aspect("equal")
    ax.axis("off")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight", dpi=100)
    plt.close(fig)
    return out
