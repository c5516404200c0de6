"""Kernels and the subset-averaged unbiased MMD² estimator behind KID.

Subsets are drawn exactly as torch-fidelity draws them, so the same seed gives the same subsets::

    rng = np.random.RandomState(seed)
    for each subset:
        idx_x = rng.choice(n_x, m, replace=False)
        idx_y = rng.choice(n_y, m, replace=False)

The kernels here return K − 1. The unbiased MMD² does not change when a constant is added to the kernel
(the constants of its three terms cancel), and K − 1 keeps the digits that matter where K is close to
1 — the polynomial kernel at small x·y/D, the RBF kernel between near points. Kernel values are
evaluated in the features' dtype — float64, or float32 (``kernel_dtype="float32"`` in
:mod:`dsim.metrics._kid`) for twice the BLAS throughput — and every sum over kernel entries is
accumulated in float64, so float32 kernels cost only their own rounding (about 1e-10 absolute on KID
at 1000 × 2048-d subsets, against about 1e-7 when the sums run in float32 as well).

When the sets are small next to ``subsets·subset_size²`` (the cost model in :func:`subset_mmd2`), the
kernel matrices of the full sets are evaluated once, in row blocks (:func:`kernel_blocks`, half of
K_XX and K_YY), and summed over each subset's pairs through 0/1 indicator matrices — the same sums in
another order. Otherwise each subset is evaluated on its own: one at a time in NumPy on CPU, as batches
of at most ``CHUNK_BYTES`` of working memory on other devices; those numbers do not depend on the
chunking, bit for bit.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import nullcontext
from math import comb

import numpy as np
import torch

from dsim.errors import DsimError
from dsim.metrics._checks import SubsetSizeWarning, positive_int
from dsim.metrics._linalg import (
    as_dtype,
    clamp_min_,
    diagonal_sum,
    expm1_,
    ieee_float32_matmul,
    mm_nt,
    native,
    sum_last,
    take_rows,
)

Kernel = Callable  # (x, y) -> K - 1 for native arrays (NumPy on CPU, torch elsewhere), see _linalg.native

CHUNK_BYTES = 256 * 2**20  # working-memory budget for one batch of subsets (read at call time)
FULL_KERNELS: bool | None = None  # None: choose by cost; True/False force a path (tests)


def polynomial_kernel_minus_one(x, y, *, degree: int, gamma: float, coef0: float):
    """(x·y·gamma + coef0)^degree − 1 for batched row sets x (…, n, D) and y (…, m, D) → (…, n, m).

    Evaluated as a polynomial in t = x·y·gamma by Horner's rule (for the defaults, t·(t·(t + 3) + 3)),
    so no value near 1 is formed and then cancelled. Pass the same array as x and y for K_XX: on CPU the
    product then costs half.
    """
    t = mm_nt(x, y)
    t *= gamma
    # (t + c)^p − 1 = Σ_{k=1..p} C(p, k)·c^(p−k)·t^k + (c^p − 1)
    k = t + degree * coef0 if degree > 1 else t
    for power in range(degree - 2, 0, -1):
        k *= t
        k += comb(degree, power) * coef0 ** (degree - power)
    if degree > 1:
        k *= t
    constant = coef0**degree - 1
    if constant:
        k += constant
    return k


def rbf_kernel_minus_one(x, y, *, sigma: float):
    """exp(−||x − y||² / (2σ²)) − 1 (by ``expm1``) for batched row sets x (…, n, D), y (…, m, D).

    Returns (…, n, m). The squared distances ||x||² + ||y||² − 2·x·y are assembled in float64 whatever
    the products' dtype: they cancel where x ≈ y, and a float32 norm would add one rounding error to a
    whole row.
    """
    xx = _squared_norms(x)[..., :, None]
    yy = xx.swapaxes(-1, -2) if y is x else _squared_norms(y)[..., None, :]
    product = mm_nt(x, y)
    product *= -2
    sq_dist = product + xx  # float64
    sq_dist += yy
    sq_dist = clamp_min_(sq_dist, 0.0)
    sq_dist *= -1 / (2 * sigma**2)
    return expm1_(sq_dist)


def _squared_norms(x):
    x = as_dtype(x, "float64")
    return (x * x).sum(-1)


def unbiased_mmd2(k_xx, k_xy, k_yy):
    """Unbiased MMD² from (…, m, m) kernel matrices: K_XX, K_YY without diagonals, K_XY in full.

    Sums run in float64 whatever the kernels' dtype, row by row, then over rows: unlike a joint
    reduction, that gives the same bits for a subset whatever batch it is computed in.
    """
    m = k_xx.shape[-1]

    def total(k):
        return sum_last(sum_last(k))

    def off_diagonal_sum(k):
        return total(k) - diagonal_sum(k)

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
    """Mean and population std (ddof=0) of the unbiased MMD² over seeded random subsets of x and y.

    Kernel values are evaluated in the features' dtype (float64, or float32: twice the BLAS throughput);
    sums are float64 either way (see the module docstring).
    """
    subsets = positive_int(subsets, name="subsets", metric=metric)
    subset_size = positive_int(subset_size, name="subset_size", metric=metric, minimum=2)
    seed = positive_int(seed, name="seed", metric=metric, minimum=0)
    m = clip_subset_size(subset_size, x.shape[0], y.shape[0], metric=metric)
    idx_x, idx_y = subset_indices(x.shape[0], y.shape[0], subsets, m, seed)
    xn, yn = native(x), native(y)
    n_x, n_y, d = x.shape[0], y.shape[0], x.shape[1]
    float32 = x.dtype == torch.float32
    full = FULL_KERNELS
    if full is None:  # cost in float64 multiply-adds: full kernels + indicator products (always float64)
        # vs per-subset kernels; K_XX and K_YY are symmetric, float32 products cost half
        d_cost = d / 2 if float32 else d
        full = ((n_x * n_x + n_y * n_y) / 2 + n_x * n_y) * (d_cost + subsets) < 2 * subsets * m * m * d_cost
    # overflow is checked once, on the result (one line), instead of NumPy's warnings on the way
    with ieee_float32_matmul() if float32 else nullcontext(), np.errstate(over="ignore", invalid="ignore"):
        if full:
            mmd2 = _mmd2_from_full_kernels(xn, yn, kernel, idx_x, idx_y)
        elif isinstance(xn, np.ndarray):
            # NumPy (CPU): one subset at a time — 2-D products, where K_XX and K_YY take the symmetric
            # (half-cost) BLAS path that batched products miss
            mmd2 = np.array(
                [
                    unbiased_mmd2(kernel(xs, xs), kernel(xs, ys), kernel(ys, ys))
                    for xs, ys in ((xn[ix], yn[iy]) for ix, iy in zip(idx_x, idx_y))
                ]
            )
        else:  # torch (GPU): batches of subsets within CHUNK_BYTES
            chunk = max(1, CHUNK_BYTES // (8 * (4 * m * m + 2 * m * d)))
            values = []
            for start in range(0, subsets, chunk):
                xs = take_rows(xn, idx_x[start : start + chunk])
                ys = take_rows(yn, idx_y[start : start + chunk])
                values.append(unbiased_mmd2(kernel(xs, xs), kernel(xs, ys), kernel(ys, ys)).cpu().numpy())
            mmd2 = np.concatenate(values)
    mean, std = float(mmd2.mean()), float(mmd2.std())
    if not (np.isfinite(mean) and np.isfinite(std)):
        raise DsimError(
            f"{metric}: the kernel sums overflow {str(x.dtype).replace('torch.', '')} (features up to "
            f"|x| = {float(max(x.abs().max(), y.abs().max())):.3g}); rescale the features"
            + (" or use kernel_dtype=float64" if x.dtype == torch.float32 else "")
        )
    return mean, std


def kernel_blocks(p, q, kernel: Kernel, *, chunk_bytes: int):
    """Blocks of K(p, q), each within ``chunk_bytes``: yields ``(rows, cols, K[rows, cols])`` (slices).

    For K(p, p) — pass the same array twice — only the blocks on and right of the diagonal are formed
    (K is symmetric): a diagonal block (``rows == cols``) as K(p_I, p_I), the symmetric half-cost
    product on CPU, and the block right of it doubled in place to stand for its mirror image below the
    diagonal. Sums over the blocks are sums over the whole matrix, at half the cost.
    """
    n, n_q = p.shape[0], q.shape[0]
    step = max(1, chunk_bytes // (8 * 2 * n_q))
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        if q is not p:
            yield rows, slice(0, n_q), kernel(p[rows], q)
            continue
        block = p[rows]
        yield rows, rows, kernel(block, block)
        if rows.stop < n:
            right = kernel(block, p[rows.stop :])
            right *= 2
            yield rows, slice(rows.stop, n), right


def _mmd2_from_full_kernels(xn, yn, kernel: Kernel, idx_x: np.ndarray, idx_y: np.ndarray) -> np.ndarray:
    """Per-subset unbiased MMD², evaluating each kernel entry of the full sets once.

    With 0/1 indicator rows a_s, b_s of subset s: Σ_{i,j∈s} K_XX[i, j] = a_sᵀ·K_XX·a_s (minus the
    diagonal for the unbiased terms), Σ K_XY = a_sᵀ·K_XY·b_s. Kernel rows are formed in blocks of at most
    ``CHUNK_BYTES`` (:func:`kernel_blocks`: half of K_XX and K_YY); each block multiplies into the
    indicator matrices at once. Cheaper than
    per-subset kernels when the sets are small next to subsets·subset_size² (chosen by
    :func:`subset_mmd2`); the same sums, in another order (equal to float rounding).
    """
    subsets, m = idx_x.shape
    a, b = _indicators(xn, idx_x), _indicators(yn, idx_y)
    xx, diag_x = _subset_sums(xn, xn, a, a, kernel)
    yy, diag_y = _subset_sums(yn, yn, b, b, kernel)
    xy, _ = _subset_sums(xn, yn, a, b, kernel)
    return ((xx - diag_x) + (yy - diag_y)) / (m * (m - 1)) - 2 * xy / (m * m)


def _indicators(rows, index: np.ndarray):
    """(subsets, n) 0/1 float64 matrix with a 1 at every (s, index[s, i]) — native array like ``rows``."""
    out = np.zeros((index.shape[0], rows.shape[0]))
    np.put_along_axis(out, index, 1.0, axis=1)
    return out if isinstance(rows, np.ndarray) else torch.from_numpy(out).to(rows.device)


def _subset_sums(p, q, a, b, kernel: Kernel):
    """Σ_s a_sᵀ·K(p, q)·b_s for every subset s, and (when p is q) Σ_s Σ_i a_s[i]·K[i, i] — in float64."""
    total = 0
    diagonal = 0
    for rows, cols, k in kernel_blocks(p, q, kernel, chunk_bytes=CHUNK_BYTES):
        k = as_dtype(k, "float64")
        total = total + _einsum("si,is->s", a[:, rows], k @ b[:, cols].T)
        if q is p and rows == cols:
            diagonal = diagonal + a[:, rows] @ (np.diagonal(k) if isinstance(k, np.ndarray) else torch.diagonal(k))
    return _to_numpy(total), _to_numpy(diagonal)


def _einsum(spec, *operands):
    return np.einsum(spec, *operands) if isinstance(operands[0], np.ndarray) else torch.einsum(spec, *operands)


def _to_numpy(v):
    return v.cpu().numpy() if torch.is_tensor(v) else np.asarray(v)
