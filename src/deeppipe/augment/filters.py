"""Fixed edge-detection filters as albumentations transforms (Prewitt, Sobel, Laplacian, Kirsch, Robinson).

They are hand-designed kernels, not learned. Subclassing ``ImageOnlyTransform`` registers them in
albumentations' serialisation registry (as ``deeppipe.augment.filters.<Name>``), so a pipeline
that contains them round-trips through ``A.to_dict`` / ``A.from_dict`` like any built-in transform,
and they can sit anywhere in an ``augment:`` list, including inside OneOf / SomeOf.

Output convention (deeppipe's, libraries differ): the response is divided by the sum of the
kernel's positive weights, so an ideal 0 -> 1 step edge maps to 1, then clipped to [0, 1]:
- Prewitt / Sobel: gradient magnitude sqrt(gx^2 + gy^2);
- Laplacian (4- or 8-neighbour): absolute response;
- Kirsch / Robinson compass: maximum response over the 8 rotated masks.
The image keeps its shape and channel count (each channel is filtered on its own); borders are
reflected (OpenCV's BORDER_REFLECT_101, torch's "reflect" padding).
"""

from __future__ import annotations

from abc import ABC
from typing import Any, Literal

import cv2
import numpy as np
from albumentations.core.transforms_interface import BaseTransformInitSchema, ImageOnlyTransform

PREWITT_X = np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], dtype=np.float32)
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)
LAPLACIAN_4 = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float32)
LAPLACIAN_8 = np.array([[1, 1, 1], [1, -8, 1], [1, 1, 1]], dtype=np.float32)
KIRSCH_N = np.array([[5, 5, 5], [-3, 0, -3], [-3, -3, -3]], dtype=np.float32)
ROBINSON_N = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=np.float32)

# The 8 border cells of a 3x3 mask in clockwise order: rotating a compass mask by 45 degrees
# shifts these cells by one place.
_RING = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0)]


def compass_masks(base: np.ndarray) -> np.ndarray:
    """The 8 rotations (by 45 degrees) of a 3x3 compass mask, shape (8, 3, 3)."""
    out = []
    values = [base[r, c] for r, c in _RING]
    for k in range(8):
        m = base.copy()
        for i, (r, c) in enumerate(_RING):
            m[r, c] = values[(i - k) % 8]
        out.append(m)
    return np.stack(out)


def _positive_sum(kernel: np.ndarray) -> float:
    return float(kernel[kernel > 0].sum())


def filter_bank(name: str, neighbours: int = 4) -> tuple[np.ndarray, str, float]:
    """(kernels (K, 3, 3), how to combine them, normaliser) for a named filter."""
    if name == "prewitt":
        return np.stack([PREWITT_X, PREWITT_X.T]), "magnitude", _positive_sum(PREWITT_X)
    if name == "sobel":
        return np.stack([SOBEL_X, SOBEL_X.T]), "magnitude", _positive_sum(SOBEL_X)
    if name == "laplacian":
        k = LAPLACIAN_4 if neighbours == 4 else LAPLACIAN_8
        return k[None], "abs", float(-k[1, 1])
    if name == "kirsch":
        return compass_masks(KIRSCH_N), "max", _positive_sum(KIRSCH_N)
    if name == "robinson":
        return compass_masks(ROBINSON_N), "max", _positive_sum(ROBINSON_N)
    raise ValueError(f"unknown edge filter {name!r}")


def combine(responses: list[np.ndarray] | np.ndarray, how: str, norm: float | None) -> np.ndarray:
    """Combine per-kernel responses (stacked on axis 0) into one edge map."""
    r = np.asarray(responses)
    if how == "magnitude":
        out = np.sqrt((r**2).sum(axis=0))
    elif how == "abs":
        out = np.abs(r[0])
    else:
        out = r.max(axis=0)
    if norm is not None:
        out = np.clip(out / norm, 0.0, 1.0)
    return out.astype(np.float32)


def apply_edge_filter(img: np.ndarray, name: str, neighbours: int = 4, normalize: bool = True) -> np.ndarray:
    """Filter an HxW or HxWxC float image channel by channel; returns float32 of the same shape."""
    kernels, how, norm = filter_bank(name, neighbours)
    src = img.astype(np.float32, copy=False)
    # cv2.filter2D computes correlation, which is what these masks are written for.
    responses = [cv2.filter2D(src, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT_101) for k in kernels]
    responses = [r.reshape(src.shape) for r in responses]  # filter2D drops a trailing 1-channel axis
    return combine(responses, how, norm if normalize else None)


class _EdgeFilter(ImageOnlyTransform, ABC):
    """Shared plumbing: one fixed filter bank applied to every channel (ABC: not registered itself)."""

    filter_name = ""

    class InitSchema(BaseTransformInitSchema):
        normalize: bool

    def __init__(self, normalize: bool = True, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.normalize = normalize

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return apply_edge_filter(img, self.filter_name, normalize=self.normalize)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("normalize",)

    def device_spec(self) -> tuple[str, int, bool]:
        """(filter name, neighbours, normalize): what the device-side path needs."""
        return self.filter_name, 4, self.normalize


class Prewitt(_EdgeFilter):
    """Prewitt gradient magnitude (3x3, equal weights across the edge)."""

    filter_name = "prewitt"


class Sobel(_EdgeFilter):
    """Sobel gradient magnitude (3x3, centre row/column weighted 2)."""

    filter_name = "sobel"


class Kirsch(_EdgeFilter):
    """Kirsch compass: maximum over 8 rotations of [[5,5,5],[-3,0,-3],[-3,-3,-3]]."""

    filter_name = "kirsch"


class Robinson(_EdgeFilter):
    """Robinson compass: maximum over 8 rotations of the Sobel-like [[1,2,1],[0,0,0],[-1,-2,-1]]."""

    filter_name = "robinson"


class Laplacian(ImageOnlyTransform):
    """Absolute Laplacian response, 4-neighbour ([[0,1,0],[1,-4,1],[0,1,0]]) or 8-neighbour."""

    filter_name = "laplacian"

    class InitSchema(BaseTransformInitSchema):
        neighbours: Literal[4, 8]
        normalize: bool

    def __init__(self, neighbours: Literal[4, 8] = 4, normalize: bool = True, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.neighbours = neighbours
        self.normalize = normalize

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return apply_edge_filter(img, "laplacian", self.neighbours, self.normalize)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("neighbours", "normalize")

    def device_spec(self) -> tuple[str, int, bool]:
        return "laplacian", int(self.neighbours), self.normalize


EDGE_FILTERS: dict[str, type[ImageOnlyTransform]] = {
    cls.__name__: cls for cls in (Prewitt, Sobel, Laplacian, Kirsch, Robinson)
}
