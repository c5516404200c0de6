"""Kernel Inception Distance: unbiased MMD² averaged over seeded random subsets (lower is better).

The estimator, the subset draw and the kernels match torch-fidelity's ``kid_features_to_metric``
(see :mod:`dsim.metrics._mmd`); values slightly below 0 are valid and mean "very similar".
"""

from __future__ import annotations

from functools import partial

import torch

from dsim.metrics._checks import feature_pair, positive_float, positive_int
from dsim.metrics._mmd import polynomial_kernel, rbf_kernel, subset_mmd2
from dsim.metrics._values import MetricValues

KEY_KID_POLY, KEY_KID_POLY_STD = "kid_poly", "kid_poly_std"
KEY_KID_RBF, KEY_KID_RBF_STD = "kid_rbf", "kid_rbf_std"


def kid_poly(
    reference,
    candidate,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    device: str | torch.device = "cpu",
) -> MetricValues:
    """KID with the polynomial kernel (x·y·gamma + coef0)^degree, gamma = 1/D by default.

    Returns the mean and std of the unbiased MMD² over ``subsets`` random subsets of ``subset_size``
    samples from each set (clipped, with a warning, to the smaller set).

    >>> import numpy as np
    >>> from dsim.metrics import kid_poly
    >>> rng = np.random.default_rng(0)
    >>> reference, candidate = rng.normal(size=(300, 16)), rng.normal(1.0, 1.0, size=(300, 16))
    >>> far = kid_poly(reference, candidate, subsets=10, subset_size=200)
    >>> near = kid_poly(reference, reference, subsets=10, subset_size=200)
    >>> sorted(far), far["kid_poly"] > 10 * abs(near["kid_poly"])
    (['kid_poly', 'kid_poly_std'], True)
    """
    metric = "KID (polynomial)"
    x, y = feature_pair(reference, candidate, metric=metric, device=device)
    gamma = 1.0 / x.shape[1] if gamma is None else positive_float(gamma, name="gamma", metric=metric)
    kernel = partial(
        polynomial_kernel,
        degree=positive_int(degree, name="degree", metric=metric),
        gamma=gamma,
        coef0=float(coef0),
    )
    mean, std = subset_mmd2(x, y, kernel, subsets=subsets, subset_size=subset_size, seed=seed, metric=metric)
    return MetricValues({KEY_KID_POLY: mean, KEY_KID_POLY_STD: std})


def kid_rbf(
    reference,
    candidate,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    sigma: float = 10.0,
    device: str | torch.device = "cpu",
) -> MetricValues:
    """KID with the Gaussian RBF kernel exp(-||x - y||² / (2·sigma²)).

    Returns the mean and std of the unbiased MMD² over ``subsets`` random subsets of ``subset_size``
    samples from each set (clipped, with a warning, to the smaller set).

    >>> import numpy as np
    >>> from dsim.metrics import kid_rbf
    >>> rng = np.random.default_rng(0)
    >>> reference, candidate = rng.normal(size=(300, 16)), rng.normal(1.0, 1.0, size=(300, 16))
    >>> far = kid_rbf(reference, candidate, subsets=10, subset_size=200, sigma=4.0)
    >>> near = kid_rbf(reference, reference, subsets=10, subset_size=200, sigma=4.0)
    >>> sorted(far), far["kid_rbf"] > 10 * abs(near["kid_rbf"])
    (['kid_rbf', 'kid_rbf_std'], True)
    """
    metric = "KID (RBF)"
    x, y = feature_pair(reference, candidate, metric=metric, device=device)
    kernel = partial(rbf_kernel, sigma=positive_float(sigma, name="sigma", metric=metric))
    mean, std = subset_mmd2(x, y, kernel, subsets=subsets, subset_size=subset_size, seed=seed, metric=metric)
    return MetricValues({KEY_KID_RBF: mean, KEY_KID_RBF_STD: std})

