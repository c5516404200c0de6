"""The metric registry: one :class:`MetricSpec` per name, and :func:`compute` to run one by name."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from dsim.errors import DsimError


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: ``fn(reference, candidate, **params) -> dict[str, float]``."""

    name: str
    fn: Callable[..., dict[str, float]]
    higher_is_better: bool
    kind: str = "distribution"
    doc: str = ""


METRICS: dict[str, MetricSpec] = {}


def register(name: str, fn: Callable, *, higher_is_better: bool, kind: str = "distribution", doc: str = ""):
    """Add ``fn`` to :data:`METRICS` under ``name``; ``doc`` defaults to the docstring's first line."""
    if name in METRICS:
        raise ValueError(f"metric {name!r} is already registered")
    doc = doc or (inspect.getdoc(fn) or "").split("\n", 1)[0]
    METRICS[name] = spec = MetricSpec(name, fn, higher_is_better, kind, doc)
    return spec


def available() -> list[str]:
    """Names of the registered metrics, sorted."""
    return sorted(METRICS)


def compute(name: str, reference, candidate, **params) -> dict[str, float]:
    """Run the metric registered as ``name`` on two N×D feature sets.

    >>> import numpy as np
    >>> from dsim.metrics import compute
    >>> features = np.random.default_rng(0).normal(size=(100, 4))
    >>> compute("fid", features, features)["fid"] < 1e-9
    True
    """
    spec = METRICS.get(name)
    if spec is None:
        raise DsimError(f"unknown metric {name!r}; choose one of: {', '.join(available())}")
    accepted = [
        p.name for p in inspect.signature(spec.fn).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise DsimError(
            f"metric {name!r} has no parameter(s) {', '.join(unknown)}; valid: {', '.join(accepted) or 'none'}"
        )
    return spec.fn(reference, candidate, **params)
