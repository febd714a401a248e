"""What was built: a table of layers with output shapes, parameters and multiply-accumulates.

The model runs once on a meta-device copy of its tensors (``torch.func.functional_call``): no
memory and no arithmetic, so a 138M-parameter VGG is summarised instantly. PyTorch's own
``FlopCounterMode`` counts the multiply-accumulates of convolutions, matrix products and
recurrent layers; a small ``TorchFunctionMode`` follows each tensor through the graph to find
the receptive field of the convolutional part (the largest, over all paths, of the input window
one output unit of a convolution or pooling layer sees; global pooling and dense layers excluded).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from deeppipe.models.layer_graph import LayerGraph
from deeppipe.models.meta import layer_type
from deeppipe.models.shapes import fmt


@dataclass
class SummaryRow:
    name: str
    type: str
    output_shape: tuple[int, ...] | None
    params: int
    macs: int = 0
    trainable: int = 0
    depth: int = 1

    def __iter__(self):  # unpacks as (name, type, output shape, params)
        return iter((self.name, self.type, self.output_shape, self.params))


@dataclass
class ModelSummary:
    rows: list[SummaryRow]
    total_params: int
    trainable_params: int
    macs: int
    receptive_field: int | None
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None
    notes: list[str] = field(default_factory=list)

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def table(self) -> str:
        """A fixed-width text table, then the totals."""
        head = ("Layer", "Type", "Output shape", "Params", "MACs")
        body = [
            (
                "  " * (r.depth - 1) + r.name,
                r.type,
                fmt(r.output_shape) if r.output_shape is not None else "-",
                f"{r.params:,}",
                f"{r.macs:,}",
            )
            for r in self.rows
        ]
        widths = [
            max(len(head[i]), *(len(row[i]) for row in body)) if body else len(head[i])
            for i in range(5)
        ]
        widths[1] = min(widths[1], 40)

        def line(cells: tuple[str, ...]) -> str:
            left = [
                cells[0].ljust(widths[0]),
                cells[1][: widths[1]].ljust(widths[1]),
                cells[2].ljust(widths[2]),
            ]
            right = [cells[3].rjust(widths[3]), cells[4].rjust(widths[4])]
            return "  ".join(left + right).rstrip()

        rule = "-" * (sum(widths) + 8)
        out = [line(head), rule, *(line(b) for b in body), rule.replace("-", "=")]
        rf = (
            "-"
            if self.receptive_field is None
            else f"{self.receptive_field} x {self.receptive_field}"
        )
        totals = [
            ("Input shape", fmt(self.input_shape)),
            ("Output shape", fmt(self.output_shape) if self.output_shape is not None else "-"),
            ("Total parameters", f"{self.total_params:,}"),
            ("Trainable parameters", f"{self.trainable_params:,}"),
            ("Non-trainable parameters", f"{self.non_trainable_params:,}"),
            ("MACs per sample", f"{self.macs:,} ({_si(self.macs)})"),
            ("Receptive field (conv part)", rf),
        ]
        w = max(len(k) for k, _ in totals)
        out += [f"{k + ':':<{w + 1}} {v}" for k, v in totals]
        out += self.notes
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows"] = [
            {
                **asdict(r),
                "output_shape": list(r.output_shape) if r.output_shape is not None else None,
            }
            for r in self.rows
        ]
        d["input_shape"] = list(self.input_shape)
        d["output_shape"] = list(self.output_shape) if self.output_shape is not None else None
        return d


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(int(n))


# ----------------------------------------------------------------------------- receptive field
def _pair(v: Any) -> int:
    if isinstance(v, (list, tuple)):
        return max(int(x) for x in v) if v else 1
    return int(v)


def _conv_rule(args: tuple, kwargs: dict) -> tuple[int, int, int]:
    weight = args[1] if len(args) > 1 else kwargs["weight"]
    k = max(weight.shape[2:]) if weight.dim() > 2 else 1
    stride = args[3] if len(args) > 3 else kwargs.get("stride", 1)
    dilation = args[5] if len(args) > 5 else kwargs.get("dilation", 1)
    return int(k), _pair(stride), _pair(dilation)


def _pool_rule(has_dilation: bool):
    def rule(args: tuple, kwargs: dict) -> tuple[int, int, int]:
        k = args[1] if len(args) > 1 else kwargs["kernel_size"]
        stride = args[2] if len(args) > 2 else kwargs.get("stride")
        if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0):
            stride = k
        dilation = (args[4] if len(args) > 4 else kwargs.get("dilation", 1)) if has_dilation else 1
        return _pair(k), _pair(stride), _pair(dilation)

    return rule


_RULES = {f"conv{d}d": _conv_rule for d in (1, 2, 3)}
for _d in (1, 2, 3):
    _RULES[f"max_pool{_d}d"] = _pool_rule(True)
    _RULES[f"max_pool{_d}d_with_indices"] = _pool_rule(True)
    _RULES[f"avg_pool{_d}d"] = _pool_rule(False)
    _RULES[f"lp_pool{_d}d"] = _pool_rule(False)


class _ReceptiveField(TorchFunctionMode):
    """Follows (receptive field, jump) through every torch function applied to the input."""

    def __init__(self) -> None:
        super().__init__()
        self.info: dict[int, tuple[float, float]] = {}
        self.keep: list[torch.Tensor] = []
        self.best: float | None = None

    def track(self, x: torch.Tensor) -> None:
        self.info[id(x)] = (1.0, 1.0)
        self.keep.append(x)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        ins = [
            self.info[id(t)]
            for t in tree_flatten((args, kwargs))[0]
            if isinstance(t, torch.Tensor) and id(t) in self.info
        ]
        if not ins:
            return out
        r, j = max(ins)
        name = getattr(func, "__name__", "").lstrip("_")
        rule = _RULES.get(name)
        if rule is not None:
            try:
                k, s, d = rule(args, kwargs)
                r, j = r + (k - 1) * d * j, j * s
                self.best = r if self.best is None else max(self.best, r)
            except Exception:  # an unusual call signature: leave the field as it is
                pass
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.info[id(t)] = (r, j)
                self.keep.append(t)
        return out


# ----------------------------------------------------------------------------- the pass
def _rows_for(model: nn.Module, depth: int) -> list[tuple[str, nn.Module, int]]:
    out = []

    def walk(prefix: str, module: nn.Module, level: int) -> None:
        for name, child in module.named_children():
            qual = f"{prefix}.{name}" if prefix else name
            out.append((qual, child, level))
            if level < depth:
                walk(qual, child, level + 1)

    walk("", model, 1)
    return out


def _count(params: list[nn.Parameter]) -> tuple[int, int]:
    seen: dict[int, nn.Parameter] = {}
    for p in params:
        seen.setdefault(id(p), p)
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return total, trainable


def summarize(model: nn.Module, input_shape: tuple[int, ...], *, depth: int = 1) -> ModelSummary:
    """Summarise ``model`` for one sample of shape ``input_shape`` (no batch axis)."""
    input_shape = tuple(int(s) for s in input_shape)
    targets = _rows_for(model, max(1, depth))
    shapes: dict[int, tuple[int, ...] | None] = {}
    macs: dict[int, int] = {}
    counter = FlopCounterMode(display=False)
    starts: dict[int, list[int]] = {}

    def pre(module: nn.Module, _inputs: Any) -> None:
        starts.setdefault(id(module), []).append(counter.get_total_flops())

    def post(module: nn.Module, _inputs: Any, output: Any) -> None:
        first = next((t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor)), None)
        shapes[id(module)] = tuple(int(s) for s in first.shape[1:]) if first is not None else None
        start = starts[id(module)].pop() if starts.get(id(module)) else counter.get_total_flops()
        macs[id(module)] = macs.get(id(module), 0) + (counter.get_total_flops() - start) // 2

    handles = []
    for _, m, _ in targets:
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    rf = _ReceptiveField()
    notes: list[str] = []
    was_training = model.training
    model.eval()
    try:
        out = _run_meta(model, input_shape, counter, rf)
        if out is None:
            notes.append(
                "(shapes and MACs from a real forward pass: the model could not run on the meta device)"
            )
            shapes.clear()
            macs.clear()
            starts.clear()
            counter = FlopCounterMode(display=False)
            rf = _ReceptiveField()
            out = _run_real(model, input_shape, counter, rf)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    first = next((t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)), None)
    out_shape = tuple(int(s) for s in first.shape[1:]) if first is not None else None
    rows = []
    for qual, m, level in targets:
        total, trainable = _count(list(m.parameters()))
        rows.append(
            SummaryRow(
                qual, layer_type(m), shapes.get(id(m)), total, macs.get(id(m), 0), trainable, level
            )
        )
    rows = _with_shared_rows(model, rows)
    total, trainable = _count(list(model.parameters()))
    rfv = None if rf.best is None else round(rf.best)
    return ModelSummary(
        rows, total, trainable, counter.get_total_flops() // 2, rfv, input_shape, out_shape, notes
    )


def _with_shared_rows(model: nn.Module, rows: list[SummaryRow]) -> list[SummaryRow]:
    """A row for every ``share:`` node of a LayerGraph, in node order: it has no child module of
    its own (its parameters and MACs are counted on the row of the layer it shares)."""
    if not isinstance(model, LayerGraph) or model.node_modules == model.node_names:
        return rows
    out: list[SummaryRow] = []
    for k, (name, info) in enumerate(zip(model.node_names, model.infos)):
        if model.node_modules[k] != name:
            out.append(SummaryRow(name, info.type, info.shape, 0))
        else:
            out.extend(r for r in rows if r.name == name or r.name.startswith(name + "."))
    return out


def _run_meta(
    model: nn.Module, input_shape: tuple[int, ...], counter: FlopCounterMode, rf: _ReceptiveField
) -> Any | None:
    from torch.func import functional_call

    tensors = {
        **{n: p for n, p in model.named_parameters(remove_duplicate=False)},
        **{n: b for n, b in model.named_buffers(remove_duplicate=False)},
    }
    on_meta = all(t.device.type == "meta" for t in tensors.values())
    fake = {
        n: t if t.device.type == "meta" else torch.empty_like(t, device="meta")
        for n, t in tensors.items()
    }
    x = torch.zeros((1, *input_shape), device="meta")
    try:
        with torch.no_grad(), counter, rf:
            rf.track(x)
            if on_meta:
                return model(x)
            return functional_call(model, fake, (x,), strict=False, tie_weights=True)
    except Exception:
        return None


def _run_real(
    model: nn.Module, input_shape: tuple[int, ...], counter: FlopCounterMode, rf: _ReceptiveField
) -> Any:
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.zeros((1, *input_shape), device=device)
    with torch.no_grad(), counter, rf:
        rf.track(x)
        return model(x)
