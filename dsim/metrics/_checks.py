"""Input checks shared by every feature-level metric, and the metric warnings.

Each check raises :class:`~dsim.errors.DsimError` with one line that says what is wrong and what to do.
"""

from __future__ import annotations

import numpy as np
import torch

from dsim.errors import DsimError


class MetricWarning(UserWarning):
    """A metric ran, but its estimate is weaker than the user probably expects."""


class RankDeficientWarning(MetricWarning):
    """Fewer samples than feature dimensions + 1: the covariance estimate is singular."""


class SubsetSizeWarning(MetricWarning):
    """The requested KID subset size was larger than a feature set and was clipped."""


def as_features(x, *, role: str, metric: str, device: str | torch.device = "cpu") -> torch.Tensor:
    """Return ``x`` (numpy array, torch tensor or nested list, N×D) as a float64 tensor on ``device``."""
    if torch.is_tensor(x):
        if x.is_complex() or x.dtype == torch.bool:
            raise DsimError(f"{metric}: {role} features have dtype {x.dtype}; pass real-valued features")
        t = x.detach().to(device=device, dtype=torch.float64)
    else:
        a = np.asarray(x)
        if a.dtype.kind not in "iuf":
            raise DsimError(f"{metric}: {role} features have dtype {a.dtype}; pass a numeric N×D array")
        t = torch.from_numpy(a.astype(np.float64, copy=False)).to(device)
    if t.ndim != 2:
        raise DsimError(
            f"{metric}: {role} features have shape {tuple(t.shape)}; pass a 2-D array of shape "
            "(n_samples, n_features)"
        )
    n, d = t.shape
    if d == 0:
        raise DsimError(f"{metric}: {role} features have 0 dimensions; pass at least one feature per sample")
    if n < 2:
        raise DsimError(f"{metric}: {role} set has {n} sample(s); pass at least 2 feature vectors per set")
    bad = int((~torch.isfinite(t)).sum())
    if bad:
        raise DsimError(
            f"{metric}: {role} features contain {bad} non-finite value(s) (NaN or inf); "
            "fix or drop those rows first"
        )
    return t


def feature_pair(reference, candidate, *, metric: str, device: str | torch.device = "cpu"):
    """Check both feature sets and return them as float64 tensors with the same feature dimension."""
    x = as_features(reference, role="reference", metric=metric, device=device)
    y = as_features(candidate, role="candidate", metric=metric, device=device)
    if x.shape[1] != y.shape[1]:
        raise DsimError(
            f"{metric}: reference has {x.shape[1]}-d features but candidate has {y.shape[1]}-d; "
            "embed both sets with the same extractor"
        )
    return x, y


def positive_int(value, *, name: str, metric: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise if it is not an integer ≥ ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DsimError(f"{metric}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive_float(value, *, name: str, metric: str) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (np.isfinite(v) and v > 0):
        raise DsimError(f"{metric}: {name} must be a positive number, got {value!r}")
    return v
