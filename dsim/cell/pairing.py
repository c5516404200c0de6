"""Pairing two datasets image by image, for the paired metrics (config group ``pairing=``).

Every candidate image gets one reference image:

- ``by_name``: the reference image with the same relative path; failing that, the same relative path
  without its extension (``a/x.png`` ↔ ``a/x.jpg``); failing that, the same file stem anywhere in the
  folder, when that stem is unique on both sides. Candidates left without a partner are dropped with a
  warning (and counted); no match at all is an error.
- ``nearest``: the reference image nearest to it in an extractor's embedding space (cosine distance by
  default, or Euclidean), ties going to the first reference image in path order. The embeddings come from
  :func:`dsim.embed`, so they are cached. ``extractor: auto`` means DreamSim when its weights are present,
  else EfficientNet-Lite0 (with a :class:`PairingWarning`).
- ``random``: a seeded random reference image (without replacement while there are enough references).

>>> from dsim.cell.pairing import random_indices
>>> random_indices(n_reference=5, n_candidate=3, seed=0).tolist()
[3, 4, 2]
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dsim.data.images import ImageFileRef, dataset_fingerprint, image_path, list_images
from dsim.errors import DsimError

if TYPE_CHECKING:
    from dsim.extractors.base import Extractor

METHODS = ("by_name", "nearest", "random")
DISTANCES = ("cosine", "euclidean")
AUTO_EXTRACTOR = "auto"
PREFERRED_EXTRACTOR = "dreamsim"
FALLBACK_EXTRACTOR = "efficientnet_lite0"
_CHUNK = 1024


class PairingWarning(UserWarning):
    """Pairing ran, but not quite as configured (a fallback extractor, unmatched images)."""


@dataclass
class Pairing:
    """Aligned image pairs: pair ``i`` is ``(reference[i], candidate[i])``.

    ``distance``: the embedding distance of each pair (``nearest`` only). ``extractor``: the extractor
    whose embedding space matched the pairs (``nearest`` only). ``unmatched``: candidate images without
    a partner (``by_name``).
    """

    method: str
    reference: list[ImageFileRef]
    candidate: list[ImageFileRef]
    distance: np.ndarray | None = None
    extractor: Extractor | None = None
    unmatched: list[str] = field(default_factory=list)
    #: the whole datasets, not just the paired images: content fingerprints, sizes, unreadable images
    reference_fingerprint: str = ""
    candidate_fingerprint: str = ""
    n_reference: int = 0
    n_candidate: int = 0
    skipped: dict[str, dict[str, str]] = field(default_factory=lambda: {"reference": {}, "candidate": {}})
    manifests: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {"reference": [], "candidate": []})
    n_embedded: dict[str, int] = field(default_factory=lambda: {"reference": 0, "candidate": 0})

    def __len__(self) -> int:
        return len(self.candidate)


def match_by_name(reference: list[ImageFileRef], candidate: list[ImageFileRef]) -> tuple[list[int], list[int]]:
    """Indices ``(ref_idx, cand_idx)`` of the pairs matched by relative path, path without extension, or stem."""

    def without_ext(rel: str) -> str:
        return str(PurePosixPath(rel).with_suffix(""))

    def unique_index(keys: list[str]) -> dict[str, int]:
        seen: dict[str, int] = {}
        duplicate = set()
        for i, key in enumerate(keys):
            if key in seen:
                duplicate.add(key)
            seen.setdefault(key, i)
        return {k: i for k, i in seen.items() if k not in duplicate}

    by_rel = {ref.relpath: i for i, ref in enumerate(reference)}
    by_noext = unique_index([without_ext(ref.relpath) for ref in reference])
    by_stem = unique_index([PurePosixPath(ref.relpath).stem for ref in reference])
    cand_stems = unique_index([PurePosixPath(c.relpath).stem for c in candidate])
    ref_idx, cand_idx = [], []
    for j, cand in enumerate(candidate):
        stem = PurePosixPath(cand.relpath).stem
        i = by_rel.get(cand.relpath)
        if i is None:
            i = by_noext.get(without_ext(cand.relpath))
        if i is None and cand_stems.get(stem) == j:
            i = by_stem.get(stem)
        if i is not None:
            ref_idx.append(i)
            cand_idx.append(j)
    return ref_idx, cand_idx


def random_indices(n_reference: int, n_candidate: int, seed: int = 0) -> np.ndarray:
    """A seeded reference index for each candidate: distinct while ``n_candidate <= n_reference``."""
    rng = np.random.default_rng(seed)
    return rng.choice(n_reference, size=n_candidate, replace=n_candidate > n_reference)


def nearest_indices(
    reference: np.ndarray, candidate: np.ndarray, *, distance: str = "cosine", device: str | torch.device = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate row, the index of the nearest reference row and the distance to it.

    Distances are computed in float64, in chunks of candidates (bounded memory); ties go to the lower
    reference index.

    >>> import numpy as np
    >>> idx, dist = nearest_indices(np.eye(3), np.array([[0.0, 2.0, 0.1]]))
    >>> idx.tolist(), round(float(dist[0]), 4)
    ([1], 0.0012)
    """
    if distance not in DISTANCES:
        raise DsimError(f"pairing: unknown distance {distance!r} (choose from: {', '.join(DISTANCES)})")
    ref = torch.as_tensor(np.asarray(reference), dtype=torch.float64, device=device)
    cand = torch.as_tensor(np.asarray(candidate), dtype=torch.float64, device=device)
    if ref.ndim != 2 or cand.ndim != 2 or ref.shape[1] != cand.shape[1] or not len(ref):
        raise DsimError(
            f"pairing: cannot match {tuple(cand.shape)} candidate features to {tuple(ref.shape)} reference features"
        )
    if distance == "cosine":
        ref = torch.nn.functional.normalize(ref, dim=1)
        cand = torch.nn.functional.normalize(cand, dim=1)
    indices, distances = [], []
    for start in range(0, len(cand), _CHUNK):
        block = cand[start : start + _CHUNK]
        if distance == "cosine":
            d = 1.0 - block @ ref.T
        else:
            d = torch.cdist(block, ref)
        best = torch.argmin(d, dim=1)  # first minimum: the lower index on ties
        indices.append(best.cpu().numpy())
        distances.append(d.gather(1, best[:, None]).squeeze(1).cpu().numpy())
    return np.concatenate(indices), np.concatenate(distances)


def resolve_extractor(name: str = AUTO_EXTRACTOR, weights: str = "default"):
    """The extractor used by ``nearest``: ``auto`` is DreamSim if its weights resolve, else EfficientNet-Lite0."""
    from dsim.extractors import build

    if name != AUTO_EXTRACTOR:
        extractor = build(name, weights=weights)
        extractor.resolved_weights  # noqa: B018 - a missing weights file fails here, with its message
        return extractor
    try:
        extractor = build(PREFERRED_EXTRACTOR, weights=weights)
        extractor.resolved_weights  # noqa: B018
        return extractor
    except DsimError as error:
        warnings.warn(
            f"pairing: nearest-neighbour matching uses {FALLBACK_EXTRACTOR}, not {PREFERRED_EXTRACTOR} ({error})",
            PairingWarning,
            stacklevel=2,
        )
    extractor = build(FALLBACK_EXTRACTOR, weights=weights)
    extractor.resolved_weights  # noqa: B018
    return extractor


def pair_datasets(
    reference: str | os.PathLike,
    candidate: str | os.PathLike,
    *,
    method: str = "nearest",
    extractor: str = AUTO_EXTRACTOR,
    weights: str = "default",
    distance: str = "cosine",
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 32,
    num_workers: int | None = None,
    cache_dir: str | os.PathLike = "cache",
    on_error: str = "raise",
    progress: bool = False,
) -> Pairing:
    """Pair the images of two folders by ``method`` (see the module docstring)."""
    if method not in METHODS:
        raise DsimError(f"pairing: unknown method {method!r} (choose from: {', '.join(METHODS)})")
    if method == "nearest":
        return _nearest(
            reference,
            candidate,
            extractor=extractor,
            weights=weights,
            distance=distance,
            device=device,
            batch_size=batch_size,
            num_workers=num_workers,
            cache_dir=cache_dir,
            on_error=on_error,
            progress=progress,
        )
    ref_files, cand_files = list_images(reference), list_images(candidate)
    sets: dict[str, Any] = dict(
        reference_fingerprint=dataset_fingerprint(ref_files),
        n_reference=len(ref_files),
        candidate_fingerprint=dataset_fingerprint(cand_files),
        n_candidate=len(cand_files),
        manifests={
            "reference": [(f.relpath, f.sha256) for f in ref_files],
            "candidate": [(f.relpath, f.sha256) for f in cand_files],
        },
    )
    if method == "random":
        idx = random_indices(len(ref_files), len(cand_files), int(seed))
        return Pairing(method, [ref_files[i] for i in idx], cand_files, **sets)
    ref_idx, cand_idx = match_by_name(ref_files, cand_files)
    if not ref_idx:
        raise DsimError(
            f"pairing=by_name: no image of {candidate} has a namesake in {reference} "
            "(same relative path or file stem); use pairing=nearest or pairing=random"
        )
    matched = set(cand_idx)
    unmatched = [c.relpath for j, c in enumerate(cand_files) if j not in matched]
    if unmatched:
        warnings.warn(
            f"pairing=by_name: {len(unmatched)} of {len(cand_files)} candidate images have no namesake "
            f"in the reference set and are left out (e.g. {unmatched[0]})",
            PairingWarning,
            stacklevel=2,
        )
    return Pairing(
        method, [ref_files[i] for i in ref_idx], [cand_files[j] for j in cand_idx], unmatched=unmatched, **sets
    )


def _nearest(
    reference,
    candidate,
    *,
    extractor,
    weights,
    distance,
    device,
    cache_dir,
    on_error,
    progress,
    batch_size,
    num_workers,
) -> Pairing:
    from dsim.embeddings.embed import embed, resolve_device

    chosen = resolve_extractor(extractor, weights)
    options = dict(
        device=device,
        batch_size=batch_size,
        num_workers=num_workers,
        cache_dir=cache_dir,
        on_error=on_error,
        progress=progress,
    )
    ref = embed(reference, chosen, **options)
    cand = embed(candidate, chosen, **options)
    idx, dist = nearest_indices(ref.features, cand.features, distance=distance, device=resolve_device(device))

    def refs(e, order):
        return [ImageFileRef(path=image_path(e.root, e.ids[i]), relpath=e.ids[i], sha256=e.hashes[i]) for i in order]

    return Pairing(
        "nearest",
        refs(ref, idx),
        refs(cand, range(len(cand))),
        distance=dist,
        extractor=chosen,
        reference_fingerprint=ref.fingerprint,
        candidate_fingerprint=cand.fingerprint,
        n_reference=len(ref),
        n_candidate=len(cand),
        skipped={"reference": dict(ref.skipped), "candidate": dict(cand.skipped)},
        manifests={"reference": list(getattr(ref, "manifest", [])), "candidate": list(getattr(cand, "manifest", []))},
        n_embedded={"reference": ref.n_computed, "candidate": cand.n_computed},
    )


def align_pair(reference: np.ndarray, candidate: np.ndarray, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bring the two images of a pair to one size, the rule every aligned paired metric sees.

    ``size=None``: the candidate is resized to the reference image's width × height when they differ (the
    reference is never touched). ``size=N``: both images are resized to N × N (aspect ratio not kept).
    Resizing is Pillow's bicubic filter on the 8-bit image (antialiased when shrinking).

    >>> import numpy as np
    >>> a, b = align_pair(np.zeros((4, 6, 3), np.uint8), np.zeros((8, 12, 3), np.uint8))
    >>> a.shape, b.shape
    ((4, 6, 3), (4, 6, 3))
    """
    from PIL import Image

    def resized(image: np.ndarray, width: int, height: int) -> np.ndarray:
        if image.shape[:2] == (height, width):
            return image
        return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8)

    if size is None:
        return reference, resized(candidate, reference.shape[1], reference.shape[0])
    size = int(size)
    if size < 1:
        raise DsimError(f"pairing.size must be a positive number of pixels or null, got {size}")
    return resized(reference, size, size), resized(candidate, size, size)
