"""An ensemble as one ``nn.Module``: the members side by side, combined in torch.

Its output is what a single deeppipe network outputs for the task, so everything downstream
(``evaluation.predictor``, the MLflow pyfunc, ONNX and TorchScript export) treats it as one model:
logits for a classifier whose softmax (sigmoid for binary) is the ensemble's probabilities, values
for regression. For soft voting the logits are log(mean probability), so softmax gives back the
mean exactly; for hard voting log(vote share). Per-step tags ((N, T, K)) are combined step by
step, over the last axis (CTC outputs are not: ``ensemble.methods``).
"""

from __future__ import annotations

import torch
from torch import nn

EPS = 1e-12


def meta_network(layers: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them (a stacking meta-model)."""
    mods: list[nn.Module] = []
    for i in range(len(layers) - 1):
        mods.append(nn.Linear(layers[i], layers[i + 1]))
        if i < len(layers) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


class EnsembleNetwork(nn.Module):
    def __init__(self, members: list[nn.Module], kind: str, weights: list[float], task_kind: str,
                 num_classes: int, layers: list[int] | None = None) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.kind, self.task_kind, self.num_classes = kind, task_kind, int(num_classes)
        w = torch.as_tensor(weights, dtype=torch.float32)
        # from meta.json (the combination), not the weights file
        self.register_buffer("weights", w / w.sum() if kind != "samme" else w, persistent=False)
        self.meta = meta_network(layers) if kind == "stack" else None

    def _probs(self, out: torch.Tensor) -> torch.Tensor:
        if self.task_kind == "binary":
            p = torch.sigmoid(out.reshape(out.shape[0], -1)[:, :1])
            return torch.cat([1 - p, p], dim=1)
        return torch.softmax(out, dim=-1)  # (N, K), or (N, T, K) per step (tagging, CTC)

    def _logits(self, p: torch.Tensor) -> torch.Tensor:
        p = p.clamp_min(EPS)
        if self.task_kind == "binary":
            return (torch.log(p[:, 1:2]) - torch.log(p[:, 0:1]))
        return torch.log(p)

    def _votes(self, probs: list[torch.Tensor]) -> torch.Tensor:
        """(N, K): each member's weight on the class it predicts."""
        total = torch.zeros_like(probs[0])
        for i, p in enumerate(probs):
            one_hot = torch.zeros_like(p).scatter_(-1, p.argmax(dim=-1, keepdim=True), 1.0)
            total = total + self.weights[i] * one_hot
        return total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [m(x) for m in self.members]
        if self.task_kind == "regression":
            if self.kind == "stack":
                return self.meta(torch.cat([o.reshape(o.shape[0], -1) for o in outs], dim=1))
            return sum(self.weights[i] * o for i, o in enumerate(outs))
        probs = [self._probs(o) for o in outs]
        if self.kind == "soft":
            return self._logits(sum(self.weights[i] * p for i, p in enumerate(probs)))
        if self.kind == "hard":
            return self._logits(self._votes(probs))
        if self.kind == "samme":
            # scikit-learn's AdaBoostClassifier (SAMME): the alpha-weighted votes over the sum of
            # alphas; its predict_proba is softmax(decision / (K - 1)) (binary: sigmoid of the
            # difference of the two columns), which is what these logits give
            decision = self._votes(probs) / self.weights.sum()
            if self.task_kind == "binary":
                return decision[:, 1:2] - decision[:, 0:1]
            return decision / (self.num_classes - 1)
        if self.kind == "stack":
            feats = [p[:, 1:] if self.task_kind == "binary" else p for p in probs]
            return self.meta(torch.cat(feats, dim=1))
        raise ValueError(f"unknown combination '{self.kind}'")
