"""Shared plumbing of the paired metrics: input checks, shape-grouped batches, the returned values."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from dsim.errors import DsimError
from dsim.metrics._values import MetricValues


def as_image_pairs(
    reference, candidate, *, metric: str, same_shape: bool = True
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two aligned image sequences (pair ``i`` = ``reference[i]``, ``candidate[i]``) as lists of H×W×3 uint8.

    Each may be a list of H×W×3 ``uint8`` arrays or one N×H×W×3 ``uint8`` array. The two images of a pair
    must have the same shape (unless ``same_shape=False``); different pairs may differ.
    """
    refs, cands = _image_list(reference, "reference", metric), _image_list(candidate, "candidate", metric)
    if len(refs) != len(cands):
        raise DsimError(
            f"{metric}: {len(refs)} reference image(s) but {len(cands)} candidate image(s); "
            "pass one candidate per reference (pair i = reference[i], candidate[i])"
        )
    if not refs:
        raise DsimError(f"{metric}: no image pairs given")
    for i, (a, b) in enumerate(zip(refs, cands)):
        if same_shape and a.shape != b.shape:
            raise DsimError(
                f"{metric}: pair {i} has a {a.shape[1]}×{a.shape[0]} reference and a "
                f"{b.shape[1]}×{b.shape[0]} candidate; resize them to the same size first "
                "(a dsim cell does: see pairing.size)"
            )
    return refs, cands


def _image_list(images, role: str, metric: str) -> list[np.ndarray]:
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    elif isinstance(images, np.ndarray) and images.ndim == 3:
        raise DsimError(f"{metric}: {role} is one H×W×3 image; pass a list of images (or an N×H×W×3 array)")
    out = []
    for i, image in enumerate(images):
        a = np.asarray(image)
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise DsimError(
                f"{metric}: {role} image {i} has shape {a.shape} and dtype {a.dtype}; "
                "pass H×W×3 uint8 RGB images (dsim.data.images.load_rgb decodes files so)"
            )
        out.append(a)
    return out


def shape_batches(images: Sequence[np.ndarray], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``images`` in batches of at most ``batch_size`` images that all have the same shape."""
    groups: dict[tuple, list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault(image.shape, []).append(i)
    for indices in groups.values():
        for start in range(0, len(indices), batch_size):
            yield indices[start : start + batch_size]


def to_tensor(images: Sequence[np.ndarray], indices: list[int], device) -> torch.Tensor:
    """The images at ``indices`` (same shape) as an N×3×H×W float32 tensor in [0, 1] on ``device``."""
    batch = np.stack([images[i] for i in indices])
    return torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float().div_(255.0)


def summarize(name: str, values: np.ndarray) -> MetricValues:
    """Per-pair ``values`` → the registered paired metric's summary (mean, median, best, worst, ``n_pairs``),
    every pair's value on the candidate side (:func:`dsim.metrics._registry.pair_summary`)."""
    from dsim.metrics._registry import METRICS, pair_summary

    return pair_summary(METRICS[name], values)


def check_batch_size(batch_size, metric: str) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DsimError(f"{metric}: batch_size must be an integer >= 1, got {batch_size!r}")
    return int(batch_size)
