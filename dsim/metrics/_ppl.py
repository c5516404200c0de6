"""Perceptual path length (Karras et al. 2019, StyleGAN; as in StyleGAN2-ADA and torch-fidelity).

For each sample, two latents ``z0, z1`` and a position ``t`` (``sampling=end``: t = 0; ``full``: t ~ U(0, 1))
give two nearby points on the path between them, ``t`` and ``t + epsilon``:

- ``space=z``: ``interpolation=slerp`` (StyleGAN's: on the unit sphere, then scaled to the radius √z_dim
  of a standard-normal latent; a model that normalises z, as StyleGAN's mapping does, sees the same
  inputs either way) or ``lerp`` (torch-fidelity's default);
- ``space=w``: both latents mapped to w by the model's mapping network, then ``lerp`` (StyleGAN's w-space).

Both points are synthesised; optionally centre-cropped (``crop``: StyleGAN's face crop, rows 3/8..7/8 and
columns 2/8..6/8 of a square image) and area-averaged down to ``resize`` pixels a side when larger on both
sides (StyleGAN's 256; torch-fidelity's 64, which also upsamples smaller images bilinearly — dsim leaves
them as they are, as StyleGAN does; null: never resized); the sample's
path length is their LPIPS-VGG distance divided by ``epsilon²``. PPL is the mean of the per-sample path
lengths between their 1st and 99th percentiles (``discard_lower`` / ``discard_upper``; the lower one
rounded down, the upper one up, as both references).

Latents are drawn per sample from ``(seed, i)`` — the same samples whatever ``batch_size`` — or passed in
(:func:`path_lengths`, for comparing with another implementation on the same latents).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dsim.errors import DsimError
from dsim.metrics._checks import between, boolean, choice, integer, optional, positive, text
from dsim.metrics._registry import COUNT, DETAIL, HEADLINE, SPREAD, declare, register
from dsim.metrics._values import MetricValues

SPACES = ("z", "w")
SAMPLINGS = ("end", "full")
INTERPOLATIONS = ("slerp", "lerp")


def _lpips_vgg(params: dict):
    from dsim.metrics.paired._lpips import LpipsNetwork

    return LpipsNetwork("vgg", params.get("lpips_weights", "default"), option="metric.params.lpips_weights")


_PPL = {
    "space": ("z: the latents themselves; w: mapped by the model's mapping network, then lerped", choice("z", "w")),
    "sampling": ("end: t = 0 (the path's end); full: t ~ U(0, 1) along the path", choice("end", "full")),
    "epsilon": ("the step along the path; distances are divided by epsilon^2", positive()),
    "interpolation": ("z-space: slerp (StyleGAN's) | lerp (torch-fidelity's default)", choice("slerp", "lerp")),
    "crop": ("StyleGAN's centre (face) crop before LPIPS", boolean()),
    "resize": ("side before LPIPS (StyleGAN 256, torch-fidelity 64); null: as generated", optional(integer(8))),
    "n_samples": ("latent paths sampled; null: generator.n_samples (StyleGAN used 100000)", optional(integer(2))),
    "seed": ("seed of the latents and t (one stream per sample)", integer(0)),
    "batch_size": ("paths per forward pass", integer(1)),
    "lpips_weights": ("LPIPS-VGG trunk: default (hub cache) | PATH | random (plumbing tests only)", text()),
    "discard_lower": ("percentile below which paths are dropped; null: keep all", optional(between(0, 100))),
    "discard_upper": ("percentile above which paths are dropped; null: keep all", optional(between(0, 100))),
}


def _ppl_values(name: str) -> dict:
    return {name: HEADLINE, f"{name}_std": SPREAD, f"{name}_untrimmed": DETAIL, "n_kept": COUNT}


_PPL_NOTES = (
    "Needs a generator: generator=toy (or your own) and pair.candidate=generator; the reference is recorded, not used.",
    "Per-path t, path length and kept flag are logged as an artifact (per_image_candidate.csv).",
)


@declare(
    "ppl",
    higher_is_better=False,
    kind="generator",
    values=_ppl_values("ppl"),
    network=_lpips_vgg,
    ranges={"ppl": (0.0, None), "ppl_untrimmed": (0.0, None)},
    doc="Perceptual path length: LPIPS-VGG distance of two nearby points on a latent path / epsilon^2, "
    "trimmed mean (Karras et al. 2019)",
    notes=_PPL_NOTES,
    per_image={"candidate": ("t", "path_length", "kept")},
    params=_PPL,
)
def ppl(
    generator,
    *,
    space: str = "z",
    sampling: str = "end",
    epsilon: float = 1e-4,
    interpolation: str = "slerp",
    crop: bool = False,
    resize: int | None = 256,
    n_samples: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    lpips_weights: str = "default",
    discard_lower: float | None = 1.0,
    discard_upper: float | None = 99.0,
    device: str = "cpu",
    progress=None,
) -> MetricValues:
    """Perceptual path length of a generator (:class:`dsim.generators.Generator`); lower is smoother.

    ``n_samples``: paths to sample (a cell's null means ``generator.n_samples``); ``progress``: optional
    callable, called with the number of paths done after every batch."""
    if n_samples is None:
        raise DsimError("ppl: n_samples is not set (how many latent paths to sample)")
    z0, z1, t = ppl_latents(seed, n_samples, generator.z_dim, sampling)
    distances = path_lengths(
        generator,
        z0,
        z1,
        t,
        space=space,
        epsilon=epsilon,
        interpolation=interpolation,
        crop=crop,
        resize=resize,
        batch_size=batch_size,
        lpips_weights=lpips_weights,
        device=device,
        progress=progress,
    )
    kept = trim_mask(distances, discard_lower, discard_upper)
    return MetricValues(
        summarize(distances, discard_lower, discard_upper),
        per_image={"candidate": {"t": t, "path_length": distances, "kept": kept}},
    )


def summarize(
    distances: np.ndarray, discard_lower: float | None = 1.0, discard_upper: float | None = 99.0, name: str = "ppl"
) -> dict[str, float]:
    """PPL's values from per-path lengths: trimmed mean ``<name>`` and std, untrimmed mean, paths kept."""
    distances = np.asarray(distances, dtype=np.float64)
    kept = trim_mask(distances, discard_lower, discard_upper)
    return {
        name: float(distances[kept].mean()),
        f"{name}_std": float(distances[kept].std()),
        f"{name}_untrimmed": float(distances.mean()),
        "n_kept": float(kept.sum()),
    }


def ppl_latents(seed: int, n: int, z_dim: int, sampling: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``z0``, ``z1`` (n×z_dim float32) and ``t`` (n): sample ``i`` from its own stream ``(seed, i)``."""
    if sampling not in SAMPLINGS:
        raise DsimError(f"ppl: sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    z0, z1, t = np.empty((n, z_dim), np.float32), np.empty((n, z_dim), np.float32), np.zeros(n)
    for i in range(n):
        rng = np.random.default_rng([int(seed), i, 7])  # 7: another stream than the samples folder's
        z0[i], z1[i] = rng.standard_normal(z_dim), rng.standard_normal(z_dim)
        t[i] = rng.uniform() if sampling == "full" else 0.0
    return z0, z1, t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of the directions of ``a`` and ``b`` (rows), unit-norm result (StyleGAN's)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    p = t * torch.acos(d.clamp(-1.0, 1.0))
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    out = a * torch.cos(p) + c * torch.sin(p)
    return out / out.norm(dim=-1, keepdim=True)


def _points(generator, z0, z1, t, *, space: str, epsilon: float, interpolation: str) -> torch.Tensor:
    """The images at ``t`` and ``t + epsilon`` along each sample's path, stacked (2N×3×H×W, [0, 1])."""
    if space == "w":
        w0, w1 = generator.mapping(torch.cat([z0, z1])).chunk(2)
        shape = (-1,) + (1,) * (w0.dim() - 1)
        tt = t.to(w0).reshape(shape)
        return generator.synthesis(torch.cat([torch.lerp(w0, w1, tt), torch.lerp(w0, w1, tt + epsilon)]))
    tt = t.to(z0).unsqueeze(1)
    if interpolation == "slerp":
        radius = math.sqrt(z0.shape[1])
        ends = [slerp(z0, z1, tt) * radius, slerp(z0, z1, tt + epsilon) * radius]
    else:
        ends = [torch.lerp(z0, z1, tt), torch.lerp(z0, z1, tt + epsilon)]
    return generator.images(torch.cat(ends))


def centre_crop(images: torch.Tensor) -> torch.Tensor:
    """StyleGAN's face crop of square images: rows 3c..7c, columns 2c..6c with c = size // 8."""
    if images.shape[2] != images.shape[3]:
        raise DsimError(f"ppl: crop needs square images, the generator gives {images.shape[2]}×{images.shape[3]}")
    c = images.shape[2] // 8
    return images[:, :, c * 3 : c * 7, c * 2 : c * 6]


def resized(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """Area-averaged to ``size``×``size`` when larger on both sides; else (or with ``None``) unchanged."""
    if size is None or not (images.shape[-1] > size and images.shape[-2] > size):
        return images
    return torch.nn.functional.interpolate(images, (size, size), mode="area")


def path_lengths(
    generator,
    z0,
    z1,
    t,
    *,
    space: str = "z",
    epsilon: float = 1e-4,
    interpolation: str = "slerp",
    crop: bool = False,
    resize: int | None = 256,
    batch_size: int = 32,
    lpips_weights: str = "default",
    device: str = "cpu",
    progress=None,
) -> np.ndarray:
    """Per-sample path lengths (float64) for given latents ``z0``, ``z1`` (N×z_dim) and positions ``t`` (N);
    ``progress(n)`` is called after every batch of ``n`` paths."""
    from dsim.metrics.paired._lpips import LpipsNetwork

    if space not in SPACES:
        raise DsimError(f"ppl: space must be one of {', '.join(SPACES)}, got {space!r}")
    if interpolation not in INTERPOLATIONS:
        raise DsimError(f"ppl: interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    if space == "w":
        generator.need_mapping()
    lpips_net = LpipsNetwork("vgg", lpips_weights, option="metric.params.lpips_weights").load(device)
    z0, z1, t = (torch.as_tensor(np.asarray(a)) for a in (z0, z1, t))
    out = np.empty(len(z0), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, len(z0), batch_size):
            part = slice(start, start + batch_size)
            images = _points(
                generator,
                z0[part].float().to(device),
                z1[part].float().to(device),
                t[part],
                space=space,
                epsilon=epsilon,
                interpolation=interpolation,
            ).to(device)
            if crop:
                images = centre_crop(images)
            a, b = resized(images, resize).chunk(2)
            distance = lpips_net(a, b, normalize=True).reshape(-1).double() / (epsilon**2)
            out[part] = distance.cpu().numpy()
            if progress is not None:
                progress(len(distance))
    return out


def trim_mask(distances: np.ndarray, lower: float | None, upper: float | None) -> np.ndarray:
    """Which samples are kept: between the ``lower`` (rounded down) and ``upper`` (rounded up) percentiles."""
    keep = np.ones(len(distances), dtype=bool)
    if lower is not None:
        keep &= distances >= np.percentile(distances, lower, method="lower")
    if upper is not None:
        keep &= distances <= np.percentile(distances, upper, method="higher")
    return keep


def variant(name: str):
    """:func:`ppl` whose values are named ``<name>``, ``<name>_std``, ... (``pplwend``: its own MLflow keys)."""
    import functools

    @functools.wraps(ppl)
    def named(generator, **params) -> MetricValues:
        values = ppl(generator, **params)
        return MetricValues(
            {(name + key[3:] if key.startswith("ppl") else key): v for key, v in values.items()},
            per_image=values.per_image,
        )

    named.__name__ = named.__qualname__ = name
    return named


# w-space paths are always straight lines (lerp), so the w variants fix interpolation too
_PPL_FIXED = {"z": {"space": "z"}, "w": {"space": "w", "interpolation": "lerp"}}
for _space in ("z", "w"):
    for _sampling in ("end", "full"):
        _name = f"ppl{_space}{_sampling}"
        register(
            _name,
            variant(_name),
            higher_is_better=False,
            kind="generator",
            values=_ppl_values(_name),
            network=_lpips_vgg,
            fixed=_PPL_FIXED[_space] | {"sampling": _sampling},
            ranges={_name: (0.0, None), f"{_name}_untrimmed": (0.0, None)},
            doc=f"PPL in {_space}-space, {_sampling} sampling (StyleGAN's ppl_{_space}{_sampling}); see ppl",
            notes=_PPL_NOTES,
            per_image={"candidate": ("t", "path_length", "kept")},
            params={k: v for k, v in _PPL.items() if k not in (*_PPL_FIXED[_space], "sampling")},
        )
