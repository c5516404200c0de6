"""Exact nearest-neighbour radii and ball memberships between two feature sets, in bounded memory.

Every distance this module reports or compares is the *canonical* one::

    d(a, b) = sqrt(sum_k (a_k - b_k)²)      # float64, differences first, one pair at a time

Evaluating that for all N×M pairs is memory-bound and slow, so pairs are first *screened*: tiles of
squared distances g ≈ d² come from one matrix product on centred features, with the squared norms
folded into the product ([-2x, |x|², 1] · [y, 1, |y|²] = |x - y|²), in float32 (float64 where float32
could overflow or underflow, or on CUDA when TF32 matmuls are allowed). The product's rounding error has a rigorous
a-priori bound (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1): with x̃, ỹ the centred
vectors and u the unit roundoff of the screen dtype,

    |g - d²| <= e = c·(|x̃| + |ỹ|)²,   c = 1.25·(D + 4)·u + (2D + 8)·2⁻⁵³

— (D + 4)·u for rounding the operands and accumulating D + 2 products of total magnitude (|x̃| + |ỹ|)²,
the float64 term for the norms, the centring and the canonical sum themselves, 25% headroom.
A decision "d < r" is taken from the screen when g lies outside [r² - e, r² + e] (widened by 1e-12
relative for the final sqrt) and recomputed canonically otherwise; neighbour lists keep ``EXTRA``
spare candidates, are re-ranked canonically, and are checked against the bound (a row that fails the
check is recomputed canonically against every point). The results therefore equal a brute-force float64
evaluation exactly, whatever the tile size, the screen precision or the BLAS underneath — which is what
makes them chunk-size invariant, bit for bit.

Memory: the inputs, their screen operands (N×D float32 each), O(N·EXTRA) neighbour lists and a few
tile buffers of ``TILE²`` entries, with ``TILE`` from ``CHUNK_BYTES`` — never an N×M matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dsim.metrics._linalg import matmul_nt, native, sqrt_, use_numpy

CHUNK_BYTES = 256 * 2**20  # working-memory budget for the tile buffers (read at call time)
PAIR_CHUNK_BYTES = 2**23  # differences gathered at once for canonical distances (cache-sized)
EXTRA = 8  # spare neighbours kept beyond the k needed, re-ranked canonically
SCREEN_DTYPE: torch.dtype | None = None  # None: float32 where safe (see _screen_dtype); tests may force one
_REL = 1e-12  # relative headroom for float64 rounding of r², sqrt and the canonical sums

# ---------------------------------------------------------------------------------------------------
# canonical distances


def pair_distances(a: torch.Tensor, b: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
    """Canonical distances d(a[ia[p]], b[ib[p]]) for index vectors ``ia``, ``ib`` (float64, chunked).

    Chunks stay cache-sized (at most ``PAIR_CHUNK_BYTES`` of differences); each pair's sum is computed on
    its own, so the result does not depend on the chunking.
    """
    an, bn, ian, ibn = native(a), native(b), native(ia), native(ib)
    step = max(1, min(CHUNK_BYTES, PAIR_CHUNK_BYTES) // (8 * a.shape[1]))
    parts = []
    for start in range(0, ian.shape[0], step):
        diff = an[ian[start : start + step]]
        diff -= bn[ibn[start : start + step]]
        parts.append(sqrt_(_row_dot(diff)))
    return _cat(parts, ian, a.device)


def _row_dot(diff):
    if isinstance(diff, np.ndarray):
        return np.einsum("ij,ij->i", diff, diff)
    return (diff * diff).sum(1)


def row_distances(a: torch.Tensor, i: int, b: torch.Tensor) -> torch.Tensor:
    """Canonical distances from ``a[i]`` to every row of ``b``."""
    n = b.shape[0]
    return pair_distances(a, b, torch.full((n,), i, dtype=torch.long, device=a.device), _arange(n, a.device))


def _cat(parts, like, device) -> torch.Tensor:
    if not parts:
        return torch.empty(0, dtype=torch.float64, device=device)
    if isinstance(like, np.ndarray):
        return torch.from_numpy(np.concatenate(parts))
    return torch.cat(parts)


def _arange(n, device):
    return torch.arange(n, device=device)


# ---------------------------------------------------------------------------------------------------
# the screen


def _screen_dtype(x: torch.Tensor, y: torch.Tensor, scale: float) -> torch.dtype:
    if SCREEN_DTYPE is not None:
        return SCREEN_DTYPE
    if x.device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        return torch.float64  # TF32 products would void the error bound
    if not 1e-30 < scale < 1e18:  # |x̃|² could overflow float32, or its subnormals void the relative bound
        return torch.float64
    return torch.float32


@dataclass
class _Operands:
    """One feature set prepared for the screen (as left = query side, right = key side)."""

    left: torch.Tensor  # [-2x̃, |x̃|², 1, 0…]
    right: torch.Tensor  # [x̃, 1, |x̃|², 0…]
    norm: torch.Tensor  # |x̃| (float64, rounded up)


def _operands(x: torch.Tensor, mean: torch.Tensor, dtype: torch.dtype) -> _Operands:
    centred = x - mean
    sq = (centred * centred).sum(1)
    n, d = centred.shape
    width = -(-(d + 2) // 16) * 16  # pad the inner dimension for BLAS-friendly strides
    left = torch.zeros((n, width), dtype=dtype, device=x.device)
    right = torch.zeros((n, width), dtype=dtype, device=x.device)
    left[:, :d] = centred * -2
    left[:, d] = sq
    left[:, d + 1] = 1
    right[:, :d] = centred
    right[:, d] = 1
    right[:, d + 1] = sq
    return _Operands(left, right, sq.sqrt() * (1 + _REL))


def _unit_roundoff(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps) / 2


class _Tiles:
    """Tile size and reusable tile buffers (the only memory that grows with the tile, not with N×M)."""

    def __init__(self, dtype: torch.dtype, device: torch.device):
        self.size = max(1, math.isqrt(CHUNK_BYTES // 16))
        self.dtype, self.device = dtype, device
        self._flat: dict[str, torch.Tensor] = {}

    def ranges(self, n: int):
        return [(s, min(n, s + self.size)) for s in range(0, n, self.size)]

    def buffer(self, name: str, shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
        need = shape[0] * shape[1]
        flat = self._flat.get(name)
        if flat is None or flat.numel() < need:
            flat = self._flat[name] = torch.empty(need, dtype=dtype, device=self.device)
        return flat[:need].view(shape)

    def screen(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """g ≈ |a - b|² for a tile of query rows (``left``) × key rows (``right``)."""
        out = self.buffer("g", (left.shape[0], right.shape[0]), left.dtype)
        return matmul_nt(left, right, out=out)


# elementwise tile work: NumPy on CPU (reuses buffers and counts booleans ~7× faster than torch there),
# torch elsewhere


def _less(g, threshold, out):
    if use_numpy(g):
        np.less(g.numpy(), threshold.numpy(), out=out.numpy())
    else:
        torch.lt(g, threshold, out=out)
    return out


def _less_equal(g, threshold, out):
    if use_numpy(g):
        np.less_equal(g.numpy(), threshold.numpy(), out=out.numpy())
    else:
        torch.le(g, threshold, out=out)
    return out


def _count_rows(mask):
    if use_numpy(mask):
        return torch.from_numpy(np.count_nonzero(mask.numpy(), axis=1).astype(np.int64))
    return mask.sum(1)


def _any_cols(mask):
    if use_numpy(mask):
        return torch.from_numpy(mask.numpy().any(axis=0))
    return mask.any(0)


def _round_down(t64: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    t = t64.to(dtype)
    return torch.where(t.to(torch.float64) > t64, torch.nextafter(t, torch.full_like(t, -math.inf)), t)


def _round_up(t64: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    t = t64.to(dtype)
    return torch.where(t.to(torch.float64) < t64, torch.nextafter(t, torch.full_like(t, math.inf)), t)


def _band(r: torch.Tensor, e: torch.Tensor, dtype: torch.dtype):
    """Screen thresholds (lo, hi): g < lo ⇒ d < r for sure; g > hi ⇒ d > r for sure."""
    r2 = r * r
    slack = e + _REL * r2
    return _round_down(r2 - slack, dtype), _round_up(r2 + slack, dtype)


# ---------------------------------------------------------------------------------------------------
# nearest neighbours


class _Smallest:
    """Running ``kk`` smallest screen values (and their column indices) per row."""

    def __init__(self, n: int, kk: int, dtype: torch.dtype, device: torch.device):
        self.kk = kk
        self.values = torch.full((n, kk), math.inf, dtype=dtype, device=device)
        self.index = torch.full((n, kk), -1, dtype=torch.long, device=device)

    def update(self, rows: slice, values: torch.Tensor, index: torch.Tensor) -> None:
        v = torch.cat([self.values[rows], values], 1)
        i = torch.cat([self.index[rows], index], 1)
        top = torch.topk(v, self.kk, dim=1, largest=False, sorted=False)
        self.values[rows] = top.values
        self.index[rows] = i.gather(1, top.indices)

    def update_from_tile(self, rows: slice, g: torch.Tensor, col0: int, *, transposed: bool = False) -> None:
        dim = 0 if transposed else 1
        k = min(self.kk, g.shape[dim])
        top = torch.topk(g, k, dim=dim, largest=False, sorted=False)
        values, index = (top.values.T, top.indices.T) if transposed else (top.values, top.indices)
        self.update(rows, values, index + col0)


def _finish_neighbours(
    best: _Smallest, queries: torch.Tensor, keys: torch.Tensor, k: int, bound: torch.Tensor, *, exclude_self: bool
) -> torch.Tensor:
    """Exact canonical k-th neighbour distance per query row from its screened candidate list.

    With v the row's sorted screen values and e its error bound (valid for every key), the k-th
    canonical value lies within v_k ± e. Candidates below v_k - 2e are surely closer and candidates
    above v_k + 2e surely farther, so only the band in between is computed canonically (usually just
    the k-th candidate itself). A row is complete when every key left out of its list is surely
    farther; other rows are recomputed against all keys.
    """
    n, kk = best.index.shape
    v, order = torch.sort(best.values.to(torch.float64), dim=1)
    index = best.index.gather(1, order)
    e = bound[:, None]
    v_k = v[:, k - 1 : k]
    width = 2 * e + 4 * _REL * v_k.abs()  # headroom for the final sqrt's rounding
    surely_closer = (v < v_k - width).sum(1)
    rows, cols = torch.nonzero((v >= v_k - width) & (v <= v_k + width), as_tuple=True)
    table = torch.full((n, kk), math.inf, dtype=torch.float64, device=queries.device)
    table[rows, cols] = pair_distances(queries, keys, rows, index[rows, cols])
    rank = (k - 1 - surely_closer)[:, None]  # the k-th overall is this one (0-based) within the band
    kth = table.sort(dim=1).values.gather(1, rank).flatten()
    n_keys = keys.shape[0] - (1 if exclude_self else 0)
    if kk >= n_keys:  # every key is in every list
        return kth
    unsure = torch.nonzero(~(v[:, -1] - bound > (v_k.flatten() + bound) * (1 + 4 * _REL))).flatten().tolist()
    for i in unsure:
        d = row_distances(queries, i, keys)
        if exclude_self:
            d[i] = math.inf
        kth[i] = d.kthvalue(k).values
    return kth


def knn_radii(x: torch.Tensor, ops: _Operands, k: int, tiles: _Tiles, c: float) -> torch.Tensor:
    """Canonical distance from each row of ``x`` to its k-th nearest other row (itself excluded)."""
    n = x.shape[0]
    best = _Smallest(n, min(k + EXTRA, n - 1), tiles.dtype, x.device)
    spans = tiles.ranges(n)
    for bi, (i0, i1) in enumerate(spans):
        for j0, j1 in spans[bi:]:
            g = tiles.screen(ops.left[i0:i1], ops.right[j0:j1])
            if i0 == j0:
                g.fill_diagonal_(math.inf)  # a point is not its own neighbour (duplicates still are)
            best.update_from_tile(slice(i0, i1), g, j0)
            if i0 != j0:  # the same tile, read the other way round: rows j, columns i
                best.update_from_tile(slice(j0, j1), g, i0, transposed=True)
    bound = c * (ops.norm + ops.norm.max()) ** 2
    return _finish_neighbours(best, x, x, k, bound, exclude_self=True)


# ---------------------------------------------------------------------------------------------------
# reference × candidate


@dataclass
class CrossResult:
    inside_count: torch.Tensor  # per candidate: number of reference balls it lies in (d < r_i)
    covered: torch.Tensor  # per reference: some candidate lies in its ball
    recalled: torch.Tensor  # per reference: it lies in some candidate's ball (d < s_j)
    nearest: torch.Tensor  # per candidate: canonical distance to the nearest reference


def cross(
    x: torch.Tensor,
    xo: _Operands,
    r: torch.Tensor,
    y: torch.Tensor,
    yo: _Operands,
    s: torch.Tensor,
    tiles: _Tiles,
    c: float,
) -> CrossResult:
    """Ball memberships between references ``x`` (radii ``r``) and candidates ``y`` (radii ``s``).

    Tiles are candidates (rows j) × references (columns i). For each tile, flags certain from the
    screen are counted directly; pairs inside an uncertainty band are recomputed canonically.
    """
    n, m, dev = x.shape[0], y.shape[0], x.device
    dtype = tiles.dtype
    lo_r, hi_r = _band(r, c * (xo.norm + yo.norm.max()) ** 2, dtype)  # per reference (columns)
    lo_s, hi_s = _band(s, c * (yo.norm + xo.norm.max()) ** 2, dtype)  # per candidate (rows)
    count = torch.zeros(m, dtype=torch.long, device=dev)
    covered = torch.zeros(n, dtype=torch.bool, device=dev)
    recalled = torch.zeros(n, dtype=torch.bool, device=dev)
    best = _Smallest(m, min(1 + EXTRA, n), dtype, dev)
    for j0, j1 in tiles.ranges(m):
        for i0, i1 in tiles.ranges(n):
            g = tiles.screen(yo.left[j0:j1], xo.right[i0:i1])
            shape = (int(g.shape[0]), int(g.shape[1]))
            below = tiles.buffer("below", shape, torch.bool)
            band = tiles.buffer("band", shape, torch.bool)
            # candidate j inside reference ball i: d_ji < r_i (threshold per column)
            sure = _count_rows(_less(g, lo_r[None, i0:i1], below))
            count[j0:j1] += sure.to(dev)
            covered[i0:i1] |= _any_cols(below).to(dev)
            maybe = _count_rows(_less_equal(g, hi_r[None, i0:i1], band)).to(dev) - sure.to(dev)
            if bool((maybe > 0).any()):
                jj, ii = _band_pairs(below, band)
                hit = pair_distances(y, x, jj + j0, ii + i0) < r[ii + i0]
                count.index_add_(0, jj[hit] + j0, torch.ones_like(jj[hit]))
                covered[ii[hit] + i0] = True
            # reference i inside candidate ball j: d_ji < s_j (threshold per row)
            sure = _count_rows(_less(g, lo_s[j0:j1, None], below))
            recalled[i0:i1] |= _any_cols(below).to(dev)
            maybe = _count_rows(_less_equal(g, hi_s[j0:j1, None], band)).to(dev) - sure.to(dev)
            if bool((maybe > 0).any()):
                jj, ii = _band_pairs(below, band)
                hit = pair_distances(y, x, jj + j0, ii + i0) < s[jj + j0]
                recalled[ii[hit] + i0] = True
            best.update_from_tile(slice(j0, j1), g, i0)
    nearest = _finish_neighbours(best, y, x, 1, c * (yo.norm + xo.norm.max()) ** 2, exclude_self=False)
    return CrossResult(count, covered, recalled, nearest)


def _band_pairs(below: torch.Tensor, band: torch.Tensor):
    """(row, column) indices of the uncertain entries: within ``band`` (g <= hi) but not ``below`` lo."""
    if use_numpy(below):
        found = np.nonzero(band.numpy() & ~below.numpy())
        return torch.from_numpy(found[0].astype(np.int64)), torch.from_numpy(found[1].astype(np.int64))
    rows, cols = torch.nonzero(band & ~below, as_tuple=True)
    return rows, cols


# ---------------------------------------------------------------------------------------------------
# entry point


@dataclass
class Neighbourhoods:
    reference_radius: torch.Tensor  # r_i: k-th neighbour distance of each reference among references
    candidate_radius: torch.Tensor  # s_j: k-th neighbour distance of each candidate among candidates
    cross: CrossResult


def neighbourhoods(x: torch.Tensor, y: torch.Tensor, k: int) -> Neighbourhoods:
    """Radii and ball memberships for PRDC; ``x``, ``y`` float64 (N×D, M×D) on one device."""
    mean = (x.sum(0) + y.sum(0)) / (x.shape[0] + y.shape[0])
    scale = float(max((x - mean).abs().max(), (y - mean).abs().max())) * math.sqrt(x.shape[1])
    dtype = _screen_dtype(x, y, scale)
    d = x.shape[1]
    c = 1.25 * (d + 4) * _unit_roundoff(dtype) + (2 * d + 8) * _unit_roundoff(torch.float64)
    tiles = _Tiles(dtype, x.device)
    xo, yo = _operands(x, mean, dtype), _operands(y, mean, dtype)
    r = knn_radii(x, xo, k, tiles, c)
    s = knn_radii(y, yo, k, tiles, c)
    return Neighbourhoods(r, s, cross(x, xo, r, y, yo, s, tiles, c))
