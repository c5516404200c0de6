"""OTDD, the label-aware optimal-transport dataset distance (Alvarez-Melis & Fusi 2020), Gaussian label costs.

A dataset is a distribution over (feature, label) pairs z = (x, y). The ground cost between two pairs adds
the feature cost and the distance between the labels, each label seen as the distribution of its features:

    d((x, y), (x', y'))² = |x - x'|² + W2²(α_y, β_y')

and OTDD² = min over transport plans π of Σ π_ij d(z_i, z'_j)², uniform weights, solved exactly (POT's
network simplex, as ``emd``; the value is in squared units like ``emd``'s W2²). Each label's feature
distribution is approximated by a Gaussian (its mean μ and covariance Σ, ``ddof=1``; a label with one image
has Σ = 0), for which W2² has the closed form (the Bures-Wasserstein distance):

    W2²(N(μ, Σ), N(μ', Σ')) = |μ - μ'|² + tr Σ + tr Σ' - 2 tr (Σ^½ Σ' Σ^½)^½

— the paper's ``inner_ot_method="gaussian_approx"``. Labels come from the images' first-level sub-folder
names (``cats/001.png`` is a ``cats``) or from a CSV ``image,label`` (``metric.params.labels``); each set
may have its own label names (the label costs connect them). With one label per side OTDD² is emd's W2²
plus that pair's W2², a constant.
"""

from __future__ import annotations

import numpy as np
import torch

from dsim.errors import DsimError
from dsim.metrics._checks import feature_pair, optional, text
from dsim.metrics._registry import COUNT, DETAIL, HEADLINE, declare
from dsim.metrics._transport import (
    COST_COLUMN,
    DENSE_SAMPLING,
    arriving_cost,
    check_dense,
    exact_plan,
    squared_distances,
)
from dsim.metrics._values import MetricValues


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``ddof=1``; zeros for one row) of one label's features."""
    mean = features.mean(0)
    if len(features) < 2:
        return mean, np.zeros((features.shape[1], features.shape[1]))
    centred = features - mean
    return mean, centred.T @ centred / (len(features) - 1)


def psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def label_costs(x: np.ndarray, x_labels: np.ndarray, y: np.ndarray, y_labels: np.ndarray):
    """W2² between the Gaussian of every reference label and every candidate label (an L × L' matrix),
    with each side's label names in order and every row's label index."""
    names_x, index_x = np.unique(x_labels, return_inverse=True)
    names_y, index_y = np.unique(y_labels, return_inverse=True)
    gx = [gaussian(x[index_x == k]) for k in range(len(names_x))]
    gy = [gaussian(y[index_y == k]) for k in range(len(names_y))]
    costs = np.empty((len(gx), len(gy)))
    for i, (mu, sigma) in enumerate(gx):
        root = psd_sqrt(sigma)
        for j, (nu, tau) in enumerate(gy):
            cross = np.linalg.eigvalsh(root @ tau @ root)
            bures = np.trace(sigma) + np.trace(tau) - 2 * np.sqrt(np.clip(cross, 0, None)).sum()
            costs[i, j] = float(((mu - nu) ** 2).sum()) + max(float(bures), 0.0)
    return costs, index_x, index_y


def check_labels(labels, n: int, role: str) -> np.ndarray:
    if labels is None:
        raise DsimError(
            f"otdd: no labels for the {role} images; put each class in a first-level sub-folder "
            "(cats/001.png) or give metric.params.labels=FILE (a CSV image,label); in Python pass "
            f"{role}_labels="
        )
    labels = np.asarray(labels).astype(str)
    if labels.shape != (n,):
        raise DsimError(f"otdd: {len(labels)} {role} labels for {n} {role} images; give one label per image")
    return labels


@declare(
    "otdd",
    higher_is_better=False,
    doc="OTDD: label-aware exact OT with cost |x-x'|^2 + W2^2 of the labels' Gaussians (Alvarez-Melis & Fusi 2020)",
    values={"otdd": HEADLINE, "otdd_label_cost": DETAIL, "reference_labels": COUNT, "candidate_labels": COUNT},
    ranges={"otdd": (0.0, None)},
    notes=(
        "Labels: first-level sub-folder names, or labels=FILE (CSV image,label); otdd_label_cost is the plan's "
        "mean label term. Cells sample max_samples rows of a larger side (default 4096).",
    ),
    per_image={"candidate": (COST_COLUMN,)},
    cell_params={
        **DENSE_SAMPLING,
        "labels": (
            None,
            "a CSV image,label (image by relative path, stem or SHA-256); null: sub-folder names",
            optional(text()),
        ),
    },
)
def otdd(
    reference,
    candidate,
    *,
    reference_labels=None,
    candidate_labels=None,
    device: str | torch.device = "cpu",
) -> MetricValues:
    """OTDD² between two labelled sets (lower is closer), with each candidate's ``transport_cost``.

    >>> import numpy as np
    >>> from dsim.metrics import otdd
    >>> x = np.random.default_rng(0).normal(size=(40, 3))
    >>> x[20:] += 3  # two classes, apart
    >>> labels = np.repeat(["a", "b"], 20)
    >>> same = otdd(x, x, reference_labels=labels, candidate_labels=labels)["otdd"]
    >>> mixed = otdd(x, x, reference_labels=labels, candidate_labels=np.tile(["a", "b"], 20))["otdd"]
    >>> round(same, 9), mixed > same  # the same images, labelled across the classes: farther
    (0.0, True)
    """
    x, y = feature_pair(reference, candidate, metric="otdd", device=device)
    xl = check_labels(reference_labels, len(x), "reference")
    yl = check_labels(candidate_labels, len(y), "candidate")
    check_dense(len(x), len(y), metric="otdd")
    labels, index_x, index_y = label_costs(x.cpu().numpy(), xl, y.cpu().numpy(), yl)
    label_term = labels[index_x][:, index_y]
    cost = squared_distances(x, y) + label_term
    plan = exact_plan(cost, metric="otdd")
    return MetricValues(
        {
            "otdd": float((plan * cost).sum()),
            "otdd_label_cost": float((plan * label_term).sum()),
            "reference_labels": float(labels.shape[0]),
            "candidate_labels": float(labels.shape[1]),
        },
        per_image={"candidate": {COST_COLUMN: arriving_cost(plan, cost)}},
    )
