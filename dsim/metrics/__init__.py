"""Feature-level metrics: two N×D feature sets in, ``dict[str, float]`` out.

Every metric is a plain function ``fn(reference, candidate, **params)`` registered in :data:`METRICS`;
:func:`compute` runs one by name. Adding a metric is one module plus one ``register(...)`` line below.
"""

from dsim.metrics._checks import MetricWarning, RankDeficientWarning, SubsetSizeWarning
from dsim.metrics._registry import METRICS, MetricSpec, available, compute, register
from dsim.metrics.frechet import fid, fid_from_stats
from dsim.metrics.kid import kid_poly, kid_rbf

register("fid", fid, higher_is_better=False)
register("kid_poly", kid_poly, higher_is_better=False)
register("kid_rbf", kid_rbf, higher_is_better=False)

__all__ = [
    "METRICS",
    "MetricSpec",
    "MetricWarning",
    "RankDeficientWarning",
    "SubsetSizeWarning",
    "available",
    "compute",
    "fid",
    "fid_from_stats",
    "kid_poly",
    "kid_rbf",
    "register",
]
