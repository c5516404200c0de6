"""Input checks shared by every feature-level metric, and the metric warnings.

Each check raises :class:`~dsim.errors.DsimError` with one line that says what is wrong and what to do.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from dsim.errors import DsimError


class MetricWarning(UserWarning):
    """A metric ran, but its estimate is weaker than the user probably expects."""


class RankDeficientWarning(MetricWarning):
    """Fewer samples than feature dimensions + 1: the covariance estimate is singular."""


class ClippedParameterWarning(MetricWarning):
    """A size parameter (subset size, splits, PCA components) was larger than the data allows and was clipped."""


class SubsetSizeWarning(ClippedParameterWarning):
    """The requested KID subset size was larger than a feature set and was clipped."""


def as_features(
    x,
    *,
    role: str,
    metric: str,
    device: str | torch.device = "cpu",
    private: bool = False,
    dtype: str = "float64",
) -> torch.Tensor:
    """Return ``x`` (numpy array, torch tensor or nested list, N×D) as a ``dtype`` tensor on ``device``.

    The result may share memory with ``x``; with ``private=True`` it never does (callers may then
    modify it in place — an input of another dtype is converted, hence copied, anyway).
    """
    if torch.is_tensor(x):
        if x.is_complex() or x.dtype == torch.bool:
            raise DsimError(f"{metric}: {role} features have dtype {x.dtype}; pass real-valued features")
        t = x.detach().to(device=device, dtype=getattr(torch, dtype))
        if private and t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
            t = t.clone()
    else:
        a = np.asarray(x)
        if a.dtype.kind not in "iuf":
            raise DsimError(f"{metric}: {role} features have dtype {a.dtype}; pass a numeric N×D array")
        converted = a.astype(dtype, copy=False)
        if private and np.shares_memory(converted, a):
            converted = converted.copy()
        t = torch.from_numpy(converted).to(device)
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
    finite = np.isfinite(t.numpy()) if t.device.type == "cpu" else torch.isfinite(t)  # NumPy: no thread pool
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise DsimError(
            f"{metric}: {role} features contain {bad} non-finite value(s) (NaN or inf); "
            "fix or drop those rows first"
        )
    return t


def feature_pair(
    reference,
    candidate,
    *,
    metric: str,
    device: str | torch.device = "cpu",
    private: bool = False,
    dtype: str = "float64",
):
    """Check both feature sets and return them as ``dtype`` tensors with the same feature dimension."""
    x = as_features(reference, role="reference", metric=metric, device=device, private=private, dtype=dtype)
    y = as_features(candidate, role="candidate", metric=metric, device=device, private=private, dtype=dtype)
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


def one_of(value, options: tuple[str, ...], *, name: str, metric: str) -> str:
    """Return ``value`` if it is one of ``options``, or raise naming them."""
    if value not in options:
        raise DsimError(f"{metric}: {name} must be one of {', '.join(options)}; got {value!r}")
    return value


def positive_float(value, *, name: str, metric: str) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (np.isfinite(v) and v > 0):
        raise DsimError(f"{metric}: {name} must be a positive number, got {value!r}")
    return v


def optional_seed(value, *, metric: str) -> int | None:
    """Return ``value`` as a non-negative int, or ``None`` (meaning "do not shuffle")."""
    if value is None:
        return None
    return positive_int(value, name="seed", metric=metric, minimum=0)


def clip_parameter(value: int, limit: int, *, name: str, metric: str, why: str, stacklevel: int = 3) -> int:
    """``value`` clipped to ``limit``, with a :class:`ClippedParameterWarning` saying ``why`` when it had to be."""
    if value <= limit:
        return value
    warnings.warn(
        f"{metric}: {name}={value} is larger than {why}; using {name}={limit}",
        ClippedParameterWarning,
        stacklevel=stacklevel + 1,
    )
    return limit
