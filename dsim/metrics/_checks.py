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


#: the largest feature magnitude a metric accepts: every product a metric forms (covariances and their
#: products, cubic kernels of dot products) stays finite in float64 below it; no embedding comes near it
MAX_ABS_FEATURE = 1e30


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
            f"{metric}: {role} features have shape {tuple(t.shape)}; pass a 2-D array of shape (n_samples, n_features)"
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
            f"{metric}: {role} features contain {bad} non-finite value(s) (NaN or inf); fix or drop those rows first"
        )
    largest = float(t.abs().max())
    if largest > MAX_ABS_FEATURE:
        raise DsimError(
            f"{metric}: {role} features reach |x| = {largest:.3g}, beyond {MAX_ABS_FEATURE:.0e}, where "
            "the metric's float64 products overflow; rescale the features (e.g. divide by their maximum)"
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


class Constraint:
    """The values a metric parameter accepts: ``check(value, name=, metric=)`` returns the value (converted)
    or raises :class:`DsimError`; ``text`` says it in a few words (for the rendered configs and docs)."""

    def __init__(self, text: str, check):
        self.text = text
        self._check = check

    def __call__(self, value, *, name: str, metric: str):
        return self._check(value, name=name, metric=metric)

    def __repr__(self) -> str:
        return f"Constraint({self.text!r})"


def integer(minimum: int = 1) -> Constraint:
    """An integer ≥ ``minimum``."""
    return Constraint(
        f"integer >= {minimum}",
        lambda value, *, name, metric: positive_int(value, name=name, metric=metric, minimum=minimum),
    )


def optional(constraint: Constraint) -> Constraint:
    """``None`` (null) or a value ``constraint`` accepts."""
    return Constraint(
        f"null or {constraint.text}",
        lambda value, *, name, metric: None if value is None else constraint(value, name=name, metric=metric),
    )


def choice(*options: str) -> Constraint:
    """One of ``options``."""
    return Constraint(
        " | ".join(options), lambda value, *, name, metric: one_of(value, options, name=name, metric=metric)
    )


def positive() -> Constraint:
    """A finite number > 0."""
    return Constraint("number > 0", lambda value, *, name, metric: positive_float(value, name=name, metric=metric))


def number() -> Constraint:
    """Any finite number."""

    def check(value, *, name, metric):
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = float("nan")
        if isinstance(value, bool) or not np.isfinite(v):
            raise DsimError(f"{metric}: {name} must be a finite number, got {value!r}")
        return v

    return Constraint("number", check)


def positive_numbers(length: int) -> Constraint:
    """A list of ``length`` finite numbers > 0 (returned as a tuple)."""

    def check(value, *, name, metric):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != length:
            raise DsimError(f"{metric}: {name} must be a list of {length} positive numbers, got {value!r}")
        return tuple(positive_float(v, name=name, metric=metric) for v in value)

    return Constraint(f"list of {length} numbers > 0", check)


def text() -> Constraint:
    """A non-empty string (a name, a path)."""

    def check(value, *, name, metric):
        if not isinstance(value, str) or not value:
            raise DsimError(f"{metric}: {name} must be a non-empty string, got {value!r}")
        return value

    return Constraint("string", check)


def boolean() -> Constraint:
    """``true`` or ``false``."""

    def check(value, *, name, metric):
        if not isinstance(value, bool):
            raise DsimError(f"{metric}: {name} must be true or false, got {value!r}")
        return value

    return Constraint("true | false", check)


def between(low: float, high: float) -> Constraint:
    """A finite number strictly between ``low`` and ``high``."""

    def check(value, *, name, metric):
        v = number()(value, name=name, metric=metric)
        if not low < v < high:
            raise DsimError(f"{metric}: {name} must be between {low:g} and {high:g} (exclusive), got {value!r}")
        return v

    return Constraint(f"number in ({low:g}, {high:g})", check)
