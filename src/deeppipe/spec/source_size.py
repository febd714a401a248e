"""Automatic resizing for transfer learning: a spec whose images differ in size from the pretrained
network's input gets ``data.resize`` (or an image folder's decoding size) set to it when the spec is
validated. It lives with the spec, not with the models: deciding it reads the source model's
meta.json, or the spec of the experiment that will write it (``spec.checks``), and the data's shape.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from deeppipe.errors import SpecError
from deeppipe.models.transfer import source_input_shape

log = logging.getLogger(__name__)

_ANNOUNCED: set[tuple[str | None, tuple[int, ...]]] = set()


def with_source_size(spec: Any, *, file: str | None = None, shape: tuple[int, ...] | None = None) -> Any:
    """``spec`` with ``data.resize`` set to the pretrained network's input size when its images are
    of another size with the same channels (and no ``data.resize`` is given: an explicit one wins; an
    image folder's images are decoded at that size instead, unless ``data.source.size`` is given).
    Decided when the spec is validated, so the stored data set, DVC's ingest stage, the model's
    spec.yaml and its input shape all say the same size. The source's size is its meta.json's (or,
    not trained yet, that of the experiment of the project that will write it); another channel
    count is left to ``check_input_shape``, which names both shapes."""
    config = spec.model.pretrained
    if config is None or spec.data.resize is not None:
        return spec
    source = _source_shape(config.source, file)
    if source is None or len(source) != 3:
        return spec
    if shape is None:
        try:
            from deeppipe.data.sources import peek

            shape = tuple(peek(spec.data.source, on_error=spec.data.on_error).sample_shape)
        except Exception:  # data not readable here: the run's own checks say why
            return spec
    if len(shape) != 3 or shape[0] != source[0] or tuple(shape[1:]) == tuple(source[1:]):
        return spec
    size = [int(source[1]), int(source[2])]
    folder = spec.data.source.type == "image_folder"
    if folder and "size" in spec.data.source.model_fields_set:
        return spec  # the size the user decodes its images at: check_input_shape names the one to write
    if (file, tuple(size)) not in _ANNOUNCED:
        _ANNOUNCED.add((file, tuple(size)))
        log.info(
            "data.resize: %dx%d images resized to %dx%d automatically, the input size of the pretrained network "
            "(%s); set data.resize to choose another", shape[1], shape[2], size[0], size[1], config.source)
    if folder:  # decoded at that size (streamed folders included: their images are never held resized)
        source_cfg = spec.data.source.model_copy(update={"size": tuple(size)})
        return spec.model_copy(update={"data": spec.data.model_copy(update={"source": source_cfg})})
    return spec.model_copy(update={"data": spec.data.model_copy(update={"resize": size})})


def _source_shape(source: str, file: str | None) -> list[int] | None:
    if source.startswith(("models:/", "runs:/", "mlflow-artifacts:/")):
        return None  # read once fetched, when the weights are (check_pretrained)
    path = Path(source)
    if path.exists():
        from deeppipe.models.pretrained import _resolve

        try:
            return source_input_shape(_resolve(source, file))
        except SpecError:
            return None
    from deeppipe.spec.checks import _upstream

    try:
        planned = _upstream(source)
    except SpecError:
        return None
    return None if planned is None else list(planned[1])


def resized_automatically(rs: Any) -> list[int] | None:
    """The size ``with_source_size`` chose for this resolved spec's images (None: the spec's own)."""
    spec, raw = rs.spec, rs.raw.get("data") if isinstance(rs.raw.get("data"), dict) else {}
    if spec.model.pretrained is None:
        return None
    if spec.data.resize is not None and not raw.get("resize"):
        return list(spec.data.resize)
    source = raw.get("source") if isinstance(raw.get("source"), dict) else {}
    src = spec.data.source
    if src.type == "image_folder" and "size" not in source:
        default = type(src).model_fields["size"].default
        return list(src.size) if list(src.size) != list(default) else None
    return None
