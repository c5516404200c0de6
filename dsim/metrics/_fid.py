"""Fréchet distance between Gaussian fits of two feature sets (FID when the features are Inception's).

FID = ||mu1 - mu2||² + tr(S1) + tr(S2) - 2·tr(sqrt(S1·S2)), with float64 means and unbiased (ddof=1)
covariances. tr(sqrt(S1·S2)) is the sum of the square roots of the eigenvalues of S1·S2 — the quantity
torch-fidelity computes with a general (complex) eigen-solver and pytorch-fid with scipy's ``sqrtm``.

We factor S1 = A·Aᵀ (Cholesky, or a square-root factor from ``eigh`` when S1 is singular) and use that
S1·S2 = A·(Aᵀ·S2) has the same eigenvalues as the symmetric positive semi-definite Aᵀ·S2·A (on CPU
formed by LAPACK's ``dsygst``). A symmetric eigen-solver then gives real eigenvalues (rounding
negatives, which are ~0, are clipped to 0), so singular covariances (fewer samples than dimensions)
neither crash nor turn complex, and the 2048-d case runs an order of magnitude faster than ``sqrtm``
(see ``benchmarks/``).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from dsim.errors import DsimError
from dsim.metrics._checks import RankDeficientWarning, feature_pair
from dsim.metrics._linalg import (
    as_tensor,
    clamp_min_,
    eigh,
    eigvalsh,
    gram_t,
    lower_congruence,
    matmul,
    native,
    sqrt_,
)
from dsim.metrics._registry import declare
from dsim.metrics._values import MetricValues

KEY_FID = "fid"


class FeatureStats:
    """Streamed sufficient statistics of a feature set, in float64: count, mean, centred scatter.

    The scatter is Σ (x − mean)(x − mean)ᵀ, so the unbiased covariance is ``scatter / (n − 1)``; this is
    the information in (N, Σx, ΣxxT), kept centred so that large means lose no precision. Statistics of
    batches, shards or machines merge exactly (Chan, Golub and LeVeque's pairwise update), so memory is
    O(D²) whatever N: FID of a million-image set never holds its features.

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(1000, 3))
    >>> parts = FeatureStats.of(x[:300]).merge(FeatureStats.of(x[300:]))
    >>> bool(np.allclose(parts.covariance, np.cov(x, rowvar=False))), parts.n
    (True, 1000)
    """

    def __init__(self, n: int, mean: np.ndarray, scatter: np.ndarray):
        self.n, self.mean, self.scatter = int(n), np.asarray(mean, np.float64), np.asarray(scatter, np.float64)

    @classmethod
    def of(cls, features) -> FeatureStats:
        """The statistics of one N×D batch (numpy array or tensor)."""
        x = np.asarray(features.detach().cpu().numpy() if torch.is_tensor(features) else features, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise DsimError(f"FID: statistics need a non-empty N×D batch, got shape {x.shape}")
        mean = x.mean(0)
        centred = torch.from_numpy(x - mean)
        return cls(x.shape[0], mean, gram_t(centred).numpy())

    @classmethod
    def of_chunks(cls, chunks) -> FeatureStats:
        """The statistics of consecutive chunks (e.g. ``Embeddings.iter_features()``), merged as they come."""
        total = None
        for chunk in chunks:
            part = cls.of(chunk)
            total = part if total is None else total.merge(part)
        if total is None:
            raise DsimError("FID: no features to summarise")
        return total

    def merge(self, other: FeatureStats) -> FeatureStats:
        """The statistics of both sets together."""
        if self.mean.shape != other.mean.shape:
            raise DsimError(f"FID: cannot merge statistics of {self.dim}-d and {other.dim}-d features")
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        scatter = self.scatter + other.scatter + np.outer(delta, delta) * (self.n * other.n / n)
        return FeatureStats(n, mean, scatter)

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def covariance(self) -> np.ndarray:
        """Unbiased covariance (ddof = 1)."""
        if self.n < 2:
            raise DsimError(f"FID: a set has {self.n} sample(s); pass at least 2 feature vectors per set")
        return self.scatter / (self.n - 1)


def fid_from_feature_stats(
    reference: FeatureStats, candidate: FeatureStats, *, device: str | torch.device = "cpu"
) -> MetricValues:
    """:func:`fid` from streamed :class:`FeatureStats` of each side (the same value, in O(D²) memory)."""
    if reference.dim != candidate.dim:
        raise DsimError(
            f"FID: reference has {reference.dim}-d features but candidate has {candidate.dim}-d; "
            "embed both sets with the same extractor"
        )
    for role, stats in (("reference", reference), ("candidate", candidate)):
        _warn_if_rank_deficient(role, stats.n, stats.dim)
        if not (np.isfinite(stats.mean).all() and np.isfinite(stats.scatter).all()):
            raise DsimError(
                f"FID: {role} features contain non-finite values (NaN or inf); fix or drop those rows first"
            )
    value = fid_from_stats(reference.mean, reference.covariance, candidate.mean, candidate.covariance, device=device)
    return MetricValues({KEY_FID: value})


def feature_statistics(features: torch.Tensor, *, overwrite: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance (ddof=1, as ``np.cov(rowvar=False)``) of an N×D float64 tensor.

    ``overwrite=True`` centres ``features`` in place (saves a copy of the whole set).
    """
    f = native(features)
    mu = f.mean(0)
    if overwrite:
        f -= mu
    else:
        f = f - mu
    sigma = gram_t(as_tensor(f, features.device)) / (features.shape[0] - 1)
    return as_tensor(mu, features.device), sigma


def square_root_factor(sigma1: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """A factor A of ``sigma1`` = A·Aᵀ and whether it is its (lower) Cholesky factor; else V·sqrt(w) from
    ``eigh`` (``sigma1`` singular). Computed once, it serves every :func:`trace_sqrt_product` against one side."""
    factor, info = torch.linalg.cholesky_ex(sigma1)
    if int(info) == 0:
        return factor, True
    w, v = eigh(sigma1)
    return v.to(sigma1.device) * w.to(sigma1.device).clamp_min(0).sqrt(), False


def trace_sqrt_product(
    sigma1: torch.Tensor, sigma2: torch.Tensor, factor: tuple[torch.Tensor, bool] | None = None
) -> torch.Tensor:
    """tr(sqrt(sigma1·sigma2)) for symmetric positive semi-definite float64 matrices (0-d tensor);
    ``factor``: :func:`square_root_factor` of ``sigma1``, when already known."""
    root, triangular = factor if factor is not None else square_root_factor(sigma1)
    if triangular:
        inner = lower_congruence(root, sigma2)  # Lᵀ·S2·L (on CPU its lower triangle only)
    else:
        inner = matmul(matmul(root.T, sigma2), root)  # Aᵀ·S2·A
    # the eigen-solvers read the lower triangle only, so rounding asymmetry above it does not matter
    eigenvalues = native(eigvalsh(inner.to(sigma1.device)).to(sigma1.device))
    return as_tensor(sqrt_(clamp_min_(eigenvalues, 0.0)).sum(), sigma1.device)


def fid_from_stats(
    mu1, sigma1, mu2, sigma2, *, device: str | torch.device = "cpu", factor: tuple[torch.Tensor, bool] | None = None
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); lower is better.

    Takes numpy arrays or torch tensors (means of shape (D,), covariances (D, D)) and computes in float64.
    ``factor``: :func:`square_root_factor` of ``sigma1`` (float64, on ``device``), to reuse across calls.

    >>> import numpy as np
    >>> from dsim.metrics import fid_from_stats
    >>> eye = np.eye(3)
    >>> fid_from_stats(np.zeros(3), eye, np.ones(3), 4 * eye)  # 3·1² + 3 + 12 - 2·3·2
    6.0
    """
    mu1, mu2 = (torch.as_tensor(m, dtype=torch.float64, device=device) for m in (mu1, mu2))
    sigma1, sigma2 = (torch.as_tensor(s, dtype=torch.float64, device=device) for s in (sigma1, sigma2))
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise DsimError(
            f"FID: statistics have mismatched shapes mu1 {tuple(mu1.shape)}, sigma1 {tuple(sigma1.shape)}, "
            f"mu2 {tuple(mu2.shape)}, sigma2 {tuple(sigma2.shape)}; expected (D,) means and (D, D) covariances"
        )
    diff = mu1 - mu2
    tr_covmean = trace_sqrt_product(sigma1, sigma2, factor).to(sigma1.device)
    return float(diff @ diff + sigma1.trace() + sigma2.trace() - 2 * tr_covmean)


@declare(
    "fid",
    higher_is_better=False,
    from_stats=fid_from_feature_stats,
    ranges={"fid": (0.0, None)},
    doc="Frechet distance between Gaussian fits of the two feature sets",
)
def fid(reference, candidate, *, device: str | torch.device = "cpu") -> MetricValues:
    """Fréchet distance between two feature sets (N×D each); lower is better, 0 for identical sets.

    Warns with :class:`RankDeficientWarning` when a set has fewer than D + 1 samples. Values within
    float error of 0 may come out slightly negative.

    >>> import numpy as np
    >>> from dsim.metrics import fid
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=(2000, 4))
    >>> round(fid(reference, reference + 1.0)["fid"], 6)  # shifting every feature by 1 adds D·1²
    4.0
    """
    x, y = feature_pair(reference, candidate, metric="FID", device=device, private=True)
    for role, n in (("reference", x.shape[0]), ("candidate", y.shape[0])):
        _warn_if_rank_deficient(role, n, x.shape[1])
    mu1, sigma1 = feature_statistics(x, overwrite=True)
    mu2, sigma2 = feature_statistics(y, overwrite=True)
    return MetricValues({KEY_FID: fid_from_stats(mu1, sigma1, mu2, sigma2, device=device)})


def _warn_if_rank_deficient(role: str, n: int, d: int) -> None:
    if n < d + 1:
        warnings.warn(
            f"FID: {n} {role} samples for {d}-d features: covariance is rank-deficient; "
            f"use at least {d + 1} images per set for a full-rank estimate",
            RankDeficientWarning,
            stacklevel=3,
        )
