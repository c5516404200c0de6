"""Which pool images to label: I_dist of every pool image from a train set, and three ways to choose q of them.

The dataset-distance study adapts a model trained on P to an unseen set S by adding a few images of S,
chosen at a min-max-scaled I_dist of 0.6–1 from P. :func:`pool_distances` gives every pool image's
I_dist (O_dist's per-image distance, :mod:`dsim.metrics._odist`: the summed distance to every train image
after a PCA of the union), streamed from the store in chunks, so memory holds the features once, never an
N×M matrix. The strategies give an order of picks; the first q of it are the choice for q, so the choices
for q = 1, 3, 7 are nested:

- ``band``: the images whose scaled I_dist lies in the band, spread by farthest-point sampling in feature
  space within it (the first pick seeded);
- ``kcenter``: greedy k-center given P (Sener & Savarese 2018): each pick is the pool image farthest from
  P and from the picks so far, so the picks cover what S has and P lacks (deterministic: the seed has no
  effect);
- ``random``: a seeded permutation of the pool, the baseline.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from dsim.errors import DsimError

STRATEGIES = ("band", "kcenter", "random")
DEFAULT_BAND = (0.6, 1.0)
DEFAULT_COMPONENTS = 25  # O_dist's default
CHUNK = 8192  # rows streamed at once
DISTANCE_BLOCK = 4096  # rows of each side in one block of squared distances (64 MiB of float32)


def chunks(features, size: int = CHUNK) -> Iterator[np.ndarray]:
    """Consecutive row blocks of an :class:`~dsim.embeddings.embed.Embeddings` (from its store) or an array."""
    if hasattr(features, "iter_features"):
        yield from features.iter_features(size)
        return
    for start in range(0, len(features), size):
        yield np.asarray(features[start : start + size])


def pool_distances(train, pool, *, n_components: int = DEFAULT_COMPONENTS, progress: bool = False) -> np.ndarray:
    """I_dist of every pool image from the train set: O_dist's per-image values (the same PCA of the union,
    the same summed distances), computed in three streamed passes (mean, Gram matrix, projections)."""
    from dsim.metrics._odist import gram_axes, principal_axes, summed_distances

    n, dim = len(train) + len(pool), _dim(train, pool)
    n_components = min(int(n_components), n, dim)
    total = np.zeros(dim)
    for block in _both(train, pool):
        total += block.sum(0, dtype=np.float64)
    mean = total / n
    if n <= dim:  # fewer images than dimensions: the SVD of the (small) union, as O_dist takes it
        union = np.concatenate([*chunks(train), *chunks(pool)]).astype(np.float64) - mean
        axes = principal_axes(torch.from_numpy(union), n_components)
    else:
        gram = np.zeros((dim, dim))
        for block in _both(train, pool):
            centred = block.astype(np.float64) - mean
            gram += centred.T @ centred
        axes = gram_axes(torch.from_numpy(gram), n_components)
    train_points = _project(train, mean, axes)
    pool_points = _project(pool, mean, axes)
    out = np.empty(len(pool))
    for start in _progress(range(0, len(pool), CHUNK), progress, "I_dist", len(pool)):
        out[start : start + CHUNK] = summed_distances(pool_points[start : start + CHUNK], train_points).numpy()
    return out


def _both(train, pool) -> Iterator[np.ndarray]:
    yield from chunks(train)
    yield from chunks(pool)


def _dim(train, pool) -> int:
    dims = {int(getattr(f, "dim", None) or np.asarray(f[:1]).shape[1]) for f in (train, pool)}
    if len(dims) != 1:
        raise DsimError(
            f"the train and pool features differ in dimension ({sorted(dims)}); embed both with one extractor"
        )
    return dims.pop()


def _project(features, mean: np.ndarray, axes: torch.Tensor) -> torch.Tensor:
    basis = axes.numpy().T
    return torch.from_numpy(np.concatenate([(b.astype(np.float64) - mean) @ basis for b in chunks(features)]))


def min_max_scaled(values: np.ndarray) -> np.ndarray:
    """``values`` mapped onto [0, 1] by their minimum and maximum (all 0 when they are all equal)."""
    low, high = float(values.min()), float(values.max())
    return np.zeros_like(values) if high == low else (values - low) / (high - low)


def pick_order(
    strategy: str,
    train,
    pool,
    scaled: np.ndarray,
    *,
    count: int,
    band: tuple[float, float] = DEFAULT_BAND,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """The first ``count`` picks of ``strategy`` (pool row indices, in the order picked)."""
    if count > len(pool):
        raise DsimError(f"cannot choose {count} of {len(pool)} pool images; give a smaller --q")
    if strategy == "random":
        return np.random.default_rng(seed).permutation(len(pool))[:count]
    if strategy == "band":
        low, high = band
        rows = np.flatnonzero((scaled >= low) & (scaled <= high))
        if len(rows) < count:
            raise DsimError(
                f"the band [{low:g}, {high:g}] of scaled I_dist holds {len(rows)} of {len(pool)} pool images, "
                f"fewer than the {count} asked for; widen --band or give a smaller --q"
            )
        start = int(np.random.default_rng(seed).integers(len(rows)))
        return rows[farthest_points(_rows(pool, rows), count, start=start)]
    if strategy == "kcenter":
        return k_center(train, _all_rows(pool), count, progress=progress)
    raise DsimError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def _rows(features, rows: np.ndarray) -> np.ndarray:
    if hasattr(features, "subset"):
        return features.subset(rows).features
    return np.asarray(features)[rows]


def _all_rows(features) -> np.ndarray:
    """Every row as one float32 array, filled chunk by chunk (no second copy, no store pages kept mapped)."""
    if not hasattr(features, "iter_features"):
        return np.asarray(features)
    out = np.empty((len(features), features.dim), dtype=np.float32)
    start = 0
    for block in chunks(features):
        out[start : start + len(block)] = block
        start += len(block)
    return out


def farthest_points(points: np.ndarray, count: int, *, start: int) -> np.ndarray:
    """``count`` rows of ``points`` by farthest-point sampling from row ``start``: each next row is the one
    farthest (Euclidean) from the rows taken so far; ties go to the lowest row."""
    return _greedy(points, count, np.full(len(points), np.inf), first=start)


def k_center(train, pool_points: np.ndarray, count: int, *, progress: bool = False) -> np.ndarray:
    """Greedy k-center given the train set: ``count`` pool rows, each the farthest from the train set and the
    rows taken before it (squared Euclidean distance in feature space)."""
    nearest = np.full(len(pool_points), np.inf, dtype=np.float64)
    pool = torch.from_numpy(np.ascontiguousarray(pool_points, dtype=np.float32))
    pool_sq = torch.cat([(b.double() ** 2).sum(1) for b in pool.split(DISTANCE_BLOCK)])  # no float64 copy of all
    blocks = _progress(chunks(train, DISTANCE_BLOCK), progress, "k-center: distance to train", len(train))
    for block in blocks:
        keys = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))
        keys_sq = (keys.double() ** 2).sum(1)
        for start in range(0, len(pool), DISTANCE_BLOCK):
            part = pool[start : start + DISTANCE_BLOCK]
            squared = (part @ keys.T).double()  # |p|^2 + |k|^2 - 2 p.k, in place on one float64 block
            squared.mul_(-2).add_(pool_sq[start : start + DISTANCE_BLOCK, None]).add_(keys_sq[None])
            low = squared.min(1).values.clamp_min(0).numpy()
            np.minimum(nearest[start : start + len(part)], low, out=nearest[start : start + len(part)])
    return _greedy(pool_points, count, nearest, first=None)


def _greedy(points: np.ndarray, count: int, nearest: np.ndarray, *, first: int | None) -> np.ndarray:
    """Farthest-first picks: ``first`` (or the row farthest by ``nearest``), then repeatedly the row whose
    squared distance to its nearest pick (or initial ``nearest``) is largest."""
    nearest = nearest.astype(np.float64, copy=True)
    picks: list[int] = []
    for _ in range(count):
        row = int(np.argmax(nearest)) if first is None or picks else int(first)
        picks.append(row)
        centre = points[row].astype(np.float64)
        for start in range(0, len(points), DISTANCE_BLOCK):  # a block at a time: no second copy of the points
            diff = points[start : start + DISTANCE_BLOCK] - centre
            part = nearest[start : start + len(diff)]
            np.minimum(part, np.einsum("ij,ij->i", diff, diff), out=part)
        nearest[row] = -np.inf  # never picked twice
    return np.asarray(picks, dtype=np.int64)


def _progress(items, progress: bool, what: str, total_rows: int):
    if not progress:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=f"{what} ({total_rows} rows)", unit="chunk", leave=False)
