"""Authenticity percentage (Alaa et al. 2022, as dgm-eval's ``authpct``): the share of candidates that are
not copies of a reference sample.

A candidate y is authentic when its nearest reference x is closer to another reference than to y: with
d(y) = min_i |y − x_i| attained at x*, and r(x*) the distance from x* to its nearest *other* reference,
y is authentic iff r(x*) < d(y) — a memorised (copied or near-copied) sample sits inside its source's
neighbourhood. ``authpct`` = 100 × the authentic share. Exact float64 distances, computed in row chunks
(memory O(chunk × N)).
"""

from __future__ import annotations

import torch

from dsim.metrics._checks import feature_pair
from dsim.metrics._registry import declare
from dsim.metrics._values import MetricValues

CHUNK = 1024


def _nearest(a: torch.Tensor, b: torch.Tensor, *, exclude_self: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``a``: the distance to its nearest row of ``b`` and that row's index."""
    dist, index = [], []
    for start in range(0, a.shape[0], CHUNK):
        block = torch.cdist(a[start : start + CHUNK], b)
        if exclude_self:
            rows = torch.arange(block.shape[0], device=block.device)
            block[rows, rows + start] = float("inf")
        d, i = block.min(dim=1)
        dist.append(d)
        index.append(i)
    return torch.cat(dist), torch.cat(index)


@declare(
    "authpct",
    higher_is_better=True,
    ranges={"authpct": (0.0, 100.0)},
    doc="Authenticity: % of candidates farther from their nearest reference than it is from its own "
    "nearest reference (Alaa et al. 2022; dgm-eval's authpct)",
    per_image={"candidate": ("authentic", "nearest_reference_distance")},
)
def authpct(reference, candidate, *, device: str | torch.device = "cpu") -> MetricValues:
    """Percentage of candidate samples that are authentic (not inside their nearest reference's
    neighbourhood); higher means less memorisation. Per candidate: ``authentic`` and ``nearest_reference_distance``."""
    x, y = feature_pair(reference, candidate, metric="authpct", device=device)
    radius, _ = _nearest(x, x, exclude_self=True)
    distance, nearest = _nearest(y, x)
    authentic = radius[nearest] < distance
    return MetricValues(
        {"authpct": float(100.0 * authentic.double().mean())},
        per_image={
            "candidate": {"authentic": authentic.cpu().numpy(), "nearest_reference_distance": distance.cpu().numpy()}
        },
    )
