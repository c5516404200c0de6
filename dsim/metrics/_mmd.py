"""Kernels and the subset-averaged unbiased MMD² estimator behind KID.

Subsets are drawn exactly as torch-fidelity draws them, so the same seed gives the same subsets::

    rng = np.random.RandomState(seed)
    for each subset:
        idx_x = rng.choice(n_x, m, replace=False)
        idx_y = rng.choice(n_y, m, replace=False)

The subsets are then evaluated as batches of at most ``CHUNK_BYTES`` of working memory. Every subset is
computed on its own, so the numbers do not depend on the chunking.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import torch

from dsim.metrics._checks import SubsetSizeWarning, positive_int

Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

CHUNK_BYTES = 256 * 2**20  # working-memory budget for one batch of subsets (read at call time)


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, *, degree: int, gamma: float, coef0: float):
    """(x·y·gamma + coef0)^degree for batched row sets x (…, n, D) and y (…, m, D) → (…, n, m)."""
    return (x @ y.transpose(-1, -2)).mul_(gamma).add_(coef0).pow_(degree)


def rbf_kernel(x: torch.Tensor, y: torch.Tensor, *, sigma: float):
    """exp(-||x - y||² / (2σ²)) for batched row sets x (…, n, D) and y (…, m, D) → (…, n, m)."""
    xx = (x * x).sum(-1).unsqueeze(-1)
    yy = (y * y).sum(-1).unsqueeze(-2)
    sq_dist = (x @ y.transpose(-1, -2)).mul_(-2).add_(xx).add_(yy).clamp_min_(0)
    return sq_dist.mul_(-1 / (2 * sigma**2)).exp_()


def unbiased_mmd2(k_xx: torch.Tensor, k_xy: torch.Tensor, k_yy: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD² from (…, m, m) kernel matrices: K_XX, K_YY without diagonals, K_XY in full.

    Sums run row by row, then over rows: unlike a joint reduction, that gives the same bits for a
    subset whatever batch it is computed in.
    """
    m = k_xx.shape[-1]

    def total(k):
        return k.sum(-1).sum(-1)

    def off_diagonal_sum(k):
        return total(k) - k.diagonal(dim1=-2, dim2=-1).sum(-1)

    return (off_diagonal_sum(k_xx) + off_diagonal_sum(k_yy)) / (m * (m - 1)) - 2 * total(k_xy) / (m * m)


def subset_indices(n_x: int, n_y: int, subsets: int, subset_size: int, seed: int):
    """Index arrays (subsets, subset_size) into X and Y, drawn as torch-fidelity draws them."""
    rng = np.random.RandomState(seed)
    idx_x = np.empty((subsets, subset_size), dtype=np.int64)
    idx_y = np.empty((subsets, subset_size), dtype=np.int64)
    for i in range(subsets):
        idx_x[i] = rng.choice(n_x, subset_size, replace=False)
        idx_y[i] = rng.choice(n_y, subset_size, replace=False)
    return idx_x, idx_y


def clip_subset_size(subset_size: int, n_x: int, n_y: int, *, metric: str) -> int:
    """``subset_size`` clipped to the smaller set, with a :class:`SubsetSizeWarning` when it had to be."""
    smallest = min(n_x, n_y)
    if subset_size <= smallest:
        return subset_size
    warnings.warn(
        f"{metric}: subset_size {subset_size} is larger than the smaller set (reference {n_x}, candidate "
        f"{n_y} samples); using subset_size={smallest}",
        SubsetSizeWarning,
        stacklevel=4,
    )
    return smallest


def subset_mmd2(
    x: torch.Tensor, y: torch.Tensor, kernel: Kernel, *, subsets: int, subset_size: int, seed: int, metric: str
) -> tuple[float, float]:
    """Mean and population std (ddof=0) of the unbiased MMD² over seeded random subsets of x and y."""
    subsets = positive_int(subsets, name="subsets", metric=metric)
    subset_size = positive_int(subset_size, name="subset_size", metric=metric, minimum=2)
    seed = positive_int(seed, name="seed", metric=metric, minimum=0)
    m = clip_subset_size(subset_size, x.shape[0], y.shape[0], metric=metric)
    idx_x, idx_y = subset_indices(x.shape[0], y.shape[0], subsets, m, seed)
    bytes_per_subset = 8 * (4 * m * m + 2 * m * x.shape[1])
    chunk = max(1, CHUNK_BYTES // bytes_per_subset)
    values = []
    for start in range(0, subsets, chunk):
        xs = x[torch.from_numpy(idx_x[start : start + chunk]).to(x.device)]
        ys = y[torch.from_numpy(idx_y[start : start + chunk]).to(y.device)]
        values.append(unbiased_mmd2(kernel(xs, xs), kernel(xs, ys), kernel(ys, ys)))
    mmd2 = torch.cat(values)
    return float(mmd2.mean()), float(mmd2.std(correction=0))
