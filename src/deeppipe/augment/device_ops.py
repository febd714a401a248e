"""Batch versions of single albumentations transforms, one factory per transform.

Each factory reads the *validated* albumentations object (so defaults and conventions are
albumentations') and returns ``op(x, generator) -> x`` for a (B, C, H, W) tensor, or a string
saying why this configuration has no batch version. Per-sample parameters are drawn from the same
distributions as albumentations draws them, from the CPU generator handed in, so runs reproduce;
tests check that fixed parameters give the same pixels as albumentations.
"""

from __future__ import annotations

from collections.abc import Callable

import albumentations as A
import cv2
import numpy as np
import torch
import torch.nn.functional as F

import deeppipe.augment.filters as edge

Op = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _u(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    """n uniform draws in [lo, hi) (float64, CPU)."""
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def _ri(gen: torch.Generator, n: int, lo: int, hi: int) -> torch.Tensor:
    """n integers uniform in [lo, hi] inclusive, like random.randint."""
    return torch.randint(int(lo), int(hi) + 1, (n,), generator=gen)


def _applied(gen: torch.Generator, n: int, p: float, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=gen) < p).to(device)


def _where(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, 1, 1, 1), new, old)


def _scalar_fill(fill: object) -> float | None:
    """A single number for the fill value, or None when it is per-channel/random/inpainting."""
    if isinstance(fill, (int, float)) and not isinstance(fill, bool):
        return float(fill)
    if isinstance(fill, (tuple, list)) and fill and len(set(fill)) == 1:
        v = fill[0]
        return float(v) if isinstance(v, (int, float)) else None
    return None


# ---------------------------------------------------------------------------- geometric


def flip_op(t: A.BasicTransform, dim: int) -> Op:
    def op(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return _where(_applied(gen, len(x), t.p, x.device), x.flip(dim), x)

    return op


def _affine_matrices(t: A.Affine, gen: torch.Generator, n: int, h: int, w: int) -> torch.Tensor:
    """(n, 3, 3) forward matrices built exactly as albumentations' Affine builds them."""
    if t.translate_px is not None:
        tx = _ri(gen, n, *t.translate_px["x"]).double()
        ty = _ri(gen, n, *t.translate_px["y"]).double()
    elif t.translate_percent is not None:  # albumentations truncates the pixel shift to int
        tx = torch.trunc(_u(gen, n, *t.translate_percent["x"]) * w)
        ty = torch.trunc(_u(gen, n, *t.translate_percent["y"]) * h)
    else:
        tx = ty = torch.zeros(n, dtype=torch.float64)
    shx = -_u(gen, n, *t.shear["x"])
    shy = -_u(gen, n, *t.shear["y"])
    scale = {}
    for key in ("x", "y"):
        lo, hi = t.scale[key]
        if t.balanced_scale and lo < 1 < hi:
            low = torch.rand(n, generator=gen) < 0.5
            scale[key] = torch.where(low, _u(gen, n, lo, 1.0), _u(gen, n, 1.0, hi))
        elif t.balanced_scale and not (lo < 1 or hi > 1):
            scale[key] = torch.ones(n, dtype=torch.float64)
        elif t.balanced_scale:
            scale[key] = _u(gen, n, lo, 1.0) if lo < 1 else _u(gen, n, 1.0, hi)
        else:
            scale[key] = _u(gen, n, lo, hi)
    if t.keep_ratio:
        scale["y"] = scale["x"]
    rot = torch.deg2rad(_u(gen, n, *t.rotate) % 360)
    cx, cy = w / 2 - 0.5, h / 2 - 0.5

    def mat(rows: list[list[torch.Tensor | float]]) -> torch.Tensor:
        return torch.stack([torch.stack([torch.as_tensor(v, dtype=torch.float64).expand(n)
                                         for v in r], -1) for r in rows], -2)

    one, zero = 1.0, 0.0
    m_top = mat([[one, zero, -cx], [zero, one, -cy], [zero, zero, one]])
    m_scale = mat([[scale["x"], zero, zero], [zero, scale["y"], zero], [zero, zero, one]])
    c, s = torch.cos(rot), torch.sin(rot)
    m_rot = mat([[c, s, zero], [-s, c, zero], [zero, zero, one]])
    m_shear = mat([[one, torch.tan(torch.deg2rad(shx)), zero],
                   [torch.tan(torch.deg2rad(shy)), one, zero], [zero, zero, one]])
    m_tr = mat([[one, zero, tx], [zero, one, ty], [zero, zero, one]])
    m_back = mat([[one, zero, cx], [zero, one, cy], [zero, zero, one]])
    return m_back @ m_tr @ m_shear @ m_rot @ m_scale @ m_top


def affine_op(t: A.Affine) -> Op | str:
    if t.fit_output:
        return "Affine(fit_output=True) changes the output size per image"
    if t.border_mode != cv2.BORDER_CONSTANT:
        return "Affine with a non-constant border_mode"
    if t.interpolation not in (cv2.INTER_NEAREST, cv2.INTER_LINEAR):
        return "Affine interpolation other than nearest (0) or linear (1)"
    fill = _scalar_fill(t.fill)
    if fill is None:
        return "Affine with a per-channel fill"
    mode = "nearest" if t.interpolation == cv2.INTER_NEAREST else "bilinear"

    def op(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        applied = _applied(gen, n, t.p, x.device)
        inv = torch.linalg.inv(_affine_matrices(t, gen, n, h, w))[:, :2, :]  # output -> source
        # the sampling grid is built where the images are (float64 on CPU: matches OpenCV exactly)
        dt = torch.float64 if x.device.type == "cpu" else torch.float32
        inv = inv.to(device=x.device, dtype=dt)
        ys, xs = torch.meshgrid(torch.arange(h, dtype=dt, device=x.device),
                                torch.arange(w, dtype=dt, device=x.device), indexing="ij")
        pts = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(-1, 3)  # (HW, 3)
        src = torch.einsum("nij,pj->npi", inv, pts)  # (n, HW, 2) pixel coords
        grid = torch.empty_like(src)
        grid[..., 0] = src[..., 0] * (2.0 / max(w - 1, 1)) - 1.0
        grid[..., 1] = src[..., 1] * (2.0 / max(h - 1, 1)) - 1.0
        grid = grid.view(n, h, w, 2).to(device=x.device, dtype=x.dtype)
        # grid_sample pads with zeros: shift by the fill value so outside pixels become `fill`.
        out = F.grid_sample(x - fill, grid, mode=mode, padding_mode="zeros", align_corners=True)
        return _where(applied, out + fill, x)

    return op


def pad_op(t: A.PadIfNeeded) -> Op | str:
    if t.pad_height_divisor is not None or t.pad_width_divisor is not None:
        return "PadIfNeeded with divisors"
    if t.position != "center" or t.border_mode != cv2.BORDER_CONSTANT or t.p < 1:
        return "PadIfNeeded other than centred, constant border, p=1"
    fill = _scalar_fill(t.fill)
    if fill is None:
        return "PadIfNeeded with a per-channel fill"

    def op(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = max(0, (t.min_height or 0) - h), max(0, (t.min_width or 0) - w)
        if ph == 0 and pw == 0:
            return x
        top, left = ph // 2, pw // 2
        return F.pad(x, (left, pw - left, top, ph - top), value=fill)

    return op


def crop_op(t: A.RandomCrop | A.CenterCrop, random_pos: bool) -> Op | str:
    if t.p < 1 or t.pad_if_needed:
        return f"{type(t).__name__} with p<1 or pad_if_needed (sizes would differ per image)"
    ch, cw = int(t.height), int(t.width)

    def op(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        if ch > h or cw > w:
            raise ValueError(f"crop {ch}x{cw} is larger than the {h}x{w} images")
        if not random_pos:
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            return x[:, :, y0:y0 + ch, x0:x0 + cw]
        # albumentations: start = int((size - crop + 1) * U[0, 1)), both ends reachable
        y0 = torch.floor((h - ch + 1) * torch.rand(n, generator=gen, dtype=torch.float64)).long()
        x0 = torch.floor((w - cw + 1) * torch.rand(n, generator=gen, dtype=torch.float64)).long()
        rows = (y0[:, None] + torch.arange(ch)).to(x.device)  # (n, ch)
        cols = (x0[:, None] + torch.arange(cw)).to(x.device)  # (n, cw)
        b = torch.arange(n, device=x.device)[:, None, None]
        out = x.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]]  # (n, ch, cw, c)
        return out.permute(0, 3, 1, 2).contiguous()

    return op


def resize_op(t: A.Resize) -> Op | str:
    if t.p < 1 or t.interpolation not in (cv2.INTER_NEAREST, cv2.INTER_LINEAR):
        return "Resize with p<1 or interpolation other than nearest (0) / linear (1)"
    mode = "nearest" if t.interpolation == cv2.INTER_NEAREST else "bilinear"

    def op(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        size = (int(t.height), int(t.width))
        if tuple(x.shape[-2:]) == size:
            return x
        kw = {"align_corners": False} if mode == "bilinear" else {}
        return F.interpolate(x, size=size, mode=mode, **kw)

    return op


# ---------------------------------------------------------------------------- photometric


def brightness_contrast_op(t: A.RandomBrightnessContrast) -> Op | str:
    if t.ensure_safe_range:
        return "RandomBrightnessContrast(ensure_safe_range=True)"

    def op(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n = len(x)
        applied = _applied(gen, n, t.p, x.device)
        alpha = (1.0 + _u(gen, n, *t.contrast_limit)).to(x.device, x.dtype).view(-1, 1, 1, 1)
        beta = _u(gen, n, *t.brightness_limit).to(x.device, x.dtype).view(-1, 1, 1, 1)
        if not t.brightness_by_max:
            beta = beta * x.mean(dim=(1, 2, 3), keepdim=True)
        return _where(applied, (x * alpha + beta).clamp_(0.0, 1.0), x)

    return op


def _device_generator(gen: torch.Generator, device: torch.device) -> torch.Generator:
    """A generator on the tensor's device, seeded from the batch generator (no host->device noise)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    return torch.Generator(device=device).manual_seed(seed)


def gauss_noise_op(t: A.GaussNoise) -> Op | str:
    if t.noise_scale_factor != 1:
        return "GaussNoise(noise_scale_factor != 1)"

    def op(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, c, h, w = x.shape
        applied = _applied(gen, n, t.p, x.device)
        sigma = _u(gen, n, *t.std_range).to(x.device, x.dtype).view(-1, 1, 1, 1)
        mean = _u(gen, n, *t.mean_range).to(x.device, x.dtype).view(-1, 1, 1, 1)
        g = _device_generator(gen, x.device)
        shape = (n, c, h, w) if t.per_channel else (n, 1, h, w)
        noise = torch.randn(shape, generator=g, device=x.device, dtype=x.dtype) * sigma + mean
        return _where(applied, (x + noise).clamp_(0.0, 1.0), x)

    return op


def normalize_op(t: A.Normalize) -> Op | str:
    if t.normalization != "standard" or t.mean is None or t.std is None:
        return "Normalize other than 'standard' with fixed mean/std"
    mpv = float(t.max_pixel_value or 1.0)
    mean = torch.as_tensor(np.asarray(t.mean, dtype=np.float64).ravel() * mpv)
    std = torch.as_tensor(np.asarray(t.std, dtype=np.float64).ravel() * mpv)

    def op(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        c = x.shape[1]
        if len(mean) not in (1, c):
            raise ValueError(f"Normalize has {len(mean)} means for {c}-channel images")
        applied = _applied(gen, len(x), t.p, x.device)
        m = mean.to(x.device, x.dtype).view(1, -1, 1, 1)
        s = std.to(x.device, x.dtype).view(1, -1, 1, 1)
        return _where(applied, (x - m) / s, x)

    return op


# ---------------------------------------------------------------------------- occlusion


def _fill_boxes(x: torch.Tensor, y0, y1, x0, x1, active, fill: float) -> torch.Tensor:
    """Fill up to K boxes per image: y0..x1 and active are (n, K) tensors on x.device."""
    h, w = x.shape[-2:]
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = (ar_h >= y0[..., None]) & (ar_h < y1[..., None]) & active[..., None]  # (n, K, H)
    cols = (ar_w >= x0[..., None]) & (ar_w < x1[..., None])  # (n, K, W)
    mask = (rows[..., :, None] & cols[..., None, :]).any(dim=1)  # (n, H, W)
    return x.masked_fill(mask[:, None], fill)


def coarse_dropout_op(t: A.CoarseDropout) -> Op | str:
    fill = _scalar_fill(t.fill)
    if fill is None:
        return f"CoarseDropout(fill={t.fill!r}) (only a constant fill runs on the device)"

    def op(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        applied = _applied(gen, n, t.p, x.device)
        lo_n, hi_n = t.num_holes_range
        count = _ri(gen, n, lo_n, hi_n)
        k = int(hi_n)
        hr, wr = t.hole_height_range, t.hole_width_range
        if hr[1] >= 1:  # pixel sizes (albumentations' rule: upper bound >= 1 means pixels)
            hh = torch.randint(0, 2**31 - 1, (n, k), generator=gen)
            hh = int(hr[0]) + hh % (min(int(hr[1]), h) - int(hr[0]) + 1)
            ww = torch.randint(0, 2**31 - 1, (n, k), generator=gen)
            ww = int(wr[0]) + ww % (min(int(wr[1]), w) - int(wr[0]) + 1)
        else:
            hh = (h * (hr[0] + (hr[1] - hr[0]) * torch.rand(n, k, generator=gen,
                                                              dtype=torch.float64))).long()
            ww = (w * (wr[0] + (wr[1] - wr[0]) * torch.rand(n, k, generator=gen,
                                                              dtype=torch.float64))).long()
        y0 = torch.floor((h - hh + 1) * torch.rand(n, k, generator=gen, dtype=torch.float64)).long()
        x0 = torch.floor((w - ww + 1) * torch.rand(n, k, generator=gen, dtype=torch.float64)).long()
        active = (torch.arange(k)[None, :] < count[:, None]) & applied.cpu()[:, None]
        dev = x.device
        return _fill_boxes(x, y0.to(dev), (y0 + hh).to(dev), x0.to(dev), (x0 + ww).to(dev),
                           active.to(dev), fill)

    return op


def erasing_op(t: A.Erasing) -> Op | str:
    fill = _scalar_fill(t.fill)
    if fill is None:
        return f"Erasing(fill={t.fill!r}) (only a constant fill runs on the device)"

    def op(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        applied = _applied(gen, n, t.p, x.device).cpu()
        total = h * w
        r_min, r_max = t.ratio
        min_area, max_area = total * t.scale[0], total * t.scale[1]
        max_valid = min(max_area, min(r_min * h * h, r_max * h * h), min(w * w / r_min, w * w / r_max))
        if max_valid < min_area:
            return x
        area = _u(gen, n, min_area, max_valid)
        hi_r = torch.clamp(w * w / area, max=r_max)
        lo_r = torch.clamp(area / (h * h), min=r_min)
        ok = lo_r <= hi_r
        ratio = lo_r + (hi_r - lo_r) * torch.rand(n, generator=gen, dtype=torch.float64)
        eh = torch.round(torch.sqrt(area / ratio)).long().clamp(0, h)
        ew = torch.round(torch.sqrt(area * ratio)).long().clamp(0, w)
        top = torch.floor((h - eh + 1) * torch.rand(n, generator=gen, dtype=torch.float64)).long()
        left = torch.floor((w - ew + 1) * torch.rand(n, generator=gen, dtype=torch.float64)).long()
        active = (ok & applied)[:, None]
        dev = x.device
        return _fill_boxes(x, top[:, None].to(dev), (top + eh)[:, None].to(dev),
                           left[:, None].to(dev), (left + ew)[:, None].to(dev), active.to(dev), fill)

    return op


# ---------------------------------------------------------------------------- fixed filters


def edge_filter_op(t: A.ImageOnlyTransform) -> Op:
    name, neighbours, normalize = t.device_spec()
    kernels_np, how, norm = edge.filter_bank(name, neighbours)
    kernels = torch.as_tensor(kernels_np)[:, None]  # (K, 1, 3, 3)

    def op(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, c, h, w = x.shape
        applied = _applied(gen, n, t.p, x.device)
        k = kernels.to(x.device, x.dtype)
        flat = F.pad(x.reshape(n * c, 1, h, w), (1, 1, 1, 1), mode="reflect")
        r = F.conv2d(flat, k).reshape(n, c, -1, h, w)  # conv2d is a correlation, as cv2.filter2D
        if how == "magnitude":
            out = torch.sqrt((r**2).sum(dim=2))
        elif how == "abs":
            out = r[:, :, 0].abs()
        else:
            out = r.amax(dim=2)
        if normalize:
            out = (out / norm).clamp_(0.0, 1.0)
        return _where(applied, out, x)

    return op
