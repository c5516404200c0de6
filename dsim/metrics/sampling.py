"""Seeded subsampling of a feature set (``max_samples``): the kNN and kernel metrics at a million images.

PRDC, KID and CMMD cost O(N²) (kNN radii, kernel sums); at 10⁶ images per set that is out of reach, and
their estimates are stable long before (a few 10⁴ samples). ``max_samples=M`` keeps a uniformly random,
seeded subset of M rows of a larger side (without replacement, in the original order), so the same
inputs and seed always give the same subset and the same numbers.
"""

from __future__ import annotations

import warnings

import numpy as np

from dsim.metrics._checks import ClippedParameterWarning, positive_int


def sample_rows(
    n: int, max_samples: int | None, *, seed: int = 0, role: str = "", metric: str = ""
) -> np.ndarray | None:
    """Sorted row indices of a seeded sample of ``max_samples`` of ``n`` rows; ``None`` when all are kept.

    >>> sample_rows(10, 3, seed=0).tolist() == sample_rows(10, 3, seed=0).tolist()
    True
    >>> sample_rows(10, None) is None and sample_rows(10, 20) is None
    True
    """
    if max_samples is None:
        return None
    max_samples = positive_int(max_samples, name="max_samples", metric=metric or "metric", minimum=2)
    if n <= max_samples:
        return None
    warnings.warn(
        f"{metric}: using a seeded sample of {max_samples} of the {n} {role} samples (max_samples)",
        ClippedParameterWarning,
        stacklevel=2,
    )
    rng = np.random.default_rng([int(seed), 0x5A3D])
    return np.sort(rng.choice(n, size=max_samples, replace=False))
