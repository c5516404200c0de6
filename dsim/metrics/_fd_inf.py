"""FD∞ (Chong & Forsyth 2020, "Effectively unbiased FID and Inception Score and where to find them").

FID is biased upward at finite N, by an amount that falls as 1/N and depends on the model: comparing
FIDs at one N can rank two models wrongly. FD∞ estimates the FID at N = ∞: the Fréchet distance of the
full reference against seeded subsets (without replacement) of the candidate at ``num_points`` sizes
evenly spaced from ``min_fraction``·N to N, then a least-squares line of FID against 1/N, read at 1/N = 0
(Chong & Forsyth: 15 points from 5k to 50k of 50k, i.e. ``min_fraction`` 0.1).
"""

from __future__ import annotations

import numpy as np
import torch

from dsim.errors import DsimError
from dsim.metrics._checks import between, feature_pair, integer
from dsim.metrics._fid import feature_statistics, fid_from_stats, square_root_factor
from dsim.metrics._registry import COUNT, DETAIL, HEADLINE, declare
from dsim.metrics._values import MetricValues


@declare(
    "fd_inf",
    higher_is_better=False,
    doc="FD-infinity: FID extrapolated to infinitely many candidates (linear fit of FID against 1/N over "
    "seeded subsets; Chong & Forsyth 2020)",
    values={"fd_inf": HEADLINE, "fd_inf_slope": DETAIL, "fid": DETAIL, "fd_inf_points": COUNT},
    notes=("Subsets of the candidate without replacement, the full reference, as Chong & Forsyth.",),
    params={
        "num_points": ("subset sizes the line is fitted to", integer(2)),
        "min_fraction": ("the smallest subset, as a fraction of the candidate set", between(0, 1)),
        "seed": ("seed of the subset draws", integer(0)),
    },
)
def fd_inf(
    reference,
    candidate,
    *,
    num_points: int = 15,
    min_fraction: float = 0.1,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> MetricValues:
    """FID extrapolated to infinitely many candidate samples; lower is better.

    Values: ``fd_inf`` (the intercept), ``fd_inf_slope`` (the 1/N coefficient: the bias at N = 1), ``fid``
    (plain FID at the full N) and ``fd_inf_points`` (the sizes fitted).
    """
    x, y = feature_pair(reference, candidate, metric="fd_inf", device=device)
    n = y.shape[0]
    sizes = np.unique(np.linspace(max(2, int(round(min_fraction * n))), n, num_points).astype(int))
    if len(sizes) < 2:
        raise DsimError(f"fd_inf: {n} candidate samples give fewer than 2 distinct subset sizes; use more samples")
    mu1, sigma1 = feature_statistics(x)
    factor = square_root_factor(sigma1)  # the reference is the same at every size: factor it once
    rng = np.random.default_rng(seed)
    fids = []
    for size in sizes:
        rows = torch.from_numpy(np.sort(rng.choice(n, size=int(size), replace=False))).to(y.device)
        mu2, sigma2 = feature_statistics(y[rows])
        fids.append(fid_from_stats(mu1, sigma1, mu2, sigma2, device=device, factor=factor))
    slope, intercept = np.polyfit(1.0 / sizes, np.asarray(fids), 1)
    return MetricValues(
        {
            "fd_inf": float(intercept),
            "fd_inf_slope": float(slope),
            "fid": float(fids[-1]),
            "fd_inf_points": float(len(sizes)),
        }
    )
