"""An ensemble as one model artifact: the same folder as a single model (``spec.yaml``,
``model.safetensors``, ``meta.json``), with every member inside it.

``model.safetensors`` holds the whole ``EnsembleNetwork``'s state (``members.<i>.*`` and the
stacking meta-model's ``meta.*``); ``meta.json``'s ``ensemble`` entry holds each member's model
section and data facts (input shape, task, normalisation) and the combination. ``build()``
rebuilds every member from its own model section, so an ensemble loads, serves and exports through
the same code as one model (``load_model`` is the one loader for both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deeppipe.artifact import ModelArtifact, assemble, load_artifact
from deeppipe.files import ArtefactError


class EnsembleArtifact(ModelArtifact):
    @property
    def ensemble(self) -> dict[str, Any]:
        return self.meta["ensemble"]

    @property
    def member_names(self) -> list[str]:
        return [m["name"] for m in self.ensemble["members"]]

    def build(self) -> Any:
        from deeppipe.ensemble.network import EnsembleNetwork

        combo = self.ensemble["combination"]
        task = self.task
        members = [assemble(m["model"], m["meta"]) for m in self.ensemble["members"]]
        net = EnsembleNetwork(members, combo["kind"], combo["weights"], task.kind, task.num_classes,
                              combo.get("layers") or None)
        try:
            net.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as exc:
            raise ArtefactError(f"the ensemble's weights do not fit the members its meta.json describes "
                                f"({str(exc).strip().splitlines()[-1]}): the model folder is corrupt; train it "
                                "again") from None
        net.eval()
        return net

    def member(self, i: int) -> ModelArtifact:
        """Member ``i`` as a model of its own (for the member-vs-ensemble table)."""
        m = self.ensemble["members"][i]
        prefix = f"members.{i}."
        state = {k[len(prefix):]: v for k, v in self.state_dict.items() if k.startswith(prefix)}
        return ModelArtifact(spec={**self.spec, "model": m["model"]}, meta=dict(m["meta"]), state_dict=state)


def pack(spec: dict[str, Any], members: list[tuple[str, ModelArtifact]], combination: Any,
         extra_meta: dict[str, Any] | None = None) -> EnsembleArtifact:
    """One artifact from trained members and their fitted combination."""
    shapes = {tuple(a.input_shape) for _, a in members}
    if len(shapes) != 1:
        raise ValueError(f"members read inputs of different shapes: {sorted(shapes)}")
    first = members[0][1]
    state: dict[str, Any] = {}
    described = []
    for i, (name, art) in enumerate(members):
        state.update({f"members.{i}.{k}": v for k, v in art.state_dict.items()})
        described.append({"name": name, "model": art.spec["model"],
                          "seed": art.spec.get("seed"),
                          "meta": dict(art.meta)})  # all of it: whatever assemble() reads to rebuild it
    state.update(combination.state)
    total = sum(int(v.numel()) for v in state.values())
    meta = {"experiment": spec.get("experiment") or first.meta.get("experiment"), "input_shape": list(first.input_shape),
            "task": first.meta["task"], "normalize": False, "data_sha256": first.meta.get("data_sha256"),
            "best_epoch": None, "epochs_run": max(int(a.meta.get("epochs_run") or 0) for _, a in members),
            "weights_epoch": None, "parameters": total,
            "ensemble": {"method": (extra_meta or {}).get("method"), "combination": combination.to_dict(),
                         "members": described}}
    meta.update({k: v for k, v in (extra_meta or {}).items() if k != "method"})
    if first.meta.get("vocabulary"):  # text members: the served ensemble tokenises raw strings too
        from deeppipe.data.text_vocab import union

        meta["vocabulary"] = union([a.meta["vocabulary"] for _, a in members])
    return EnsembleArtifact(spec=spec, meta=meta, state_dict=state)


def as_model(artifact: ModelArtifact) -> ModelArtifact:
    """The artifact as what it is: an ensemble when its meta says so."""
    if isinstance(artifact, EnsembleArtifact) or "ensemble" not in artifact.meta:
        return artifact
    return EnsembleArtifact(spec=artifact.spec, meta=artifact.meta, state_dict=artifact.state_dict)


def load_model(path: str | Path) -> ModelArtifact:
    """A model folder, single or ensemble (the one loader the catalog, the pyfunc and export use)."""
    return as_model(load_artifact(path))
