"""Precision, recall, density and coverage (Naeem et al. 2020; precision/recall of Kynkäänniemi et al. 2019).

With r_i the distance from reference i to its k-th nearest *other* reference and s_j the same among
candidates (Euclidean distances between feature vectors)::

    precision = mean_j  1[∃ i: d(x_i, y_j) < r_i]          # candidate j looks real
    recall    = mean_i  1[∃ j: d(x_i, y_j) < s_j]          # reference i is reproduced
    density   = 1/(k·M) Σ_j Σ_i 1[d(x_i, y_j) < r_i]
    coverage  = mean_i  1[∃ j: d(x_i, y_j) < r_i]

**Comparison: strict ``<``**, as the ``prdc`` package (Naeem et al.'s code). torch-fidelity and the
StyleGAN2-ADA code use ``≤`` for precision and recall; the two agree unless a distance equals a radius
exactly (duplicate images, or a set compared with itself), and ``<`` is the choice that makes density
exactly 1 for two identical sets. All four values are higher-is-better and lie in [0, 1], except
density, which can exceed 1.

Distances are exact float64 values computed pair by pair; a bounded float32 screen finds the pairs
that need them (see :mod:`dsim.metrics._knn`), so memory stays bounded and results do not depend on
the chunk size.
"""

from __future__ import annotations

import torch

from dsim.errors import DsimError
from dsim.metrics._checks import feature_pair, integer
from dsim.metrics._knn import neighbourhoods
from dsim.metrics._registry import HEADLINE, declare
from dsim.metrics._values import MetricValues

KEY_PRECISION, KEY_RECALL, KEY_DENSITY, KEY_COVERAGE = "precision", "recall", "density", "coverage"


@declare(
    "prdc",
    higher_is_better=True,
    sampled=True,
    doc="Precision, recall, density, coverage (Naeem et al. 2020)",
    notes=(
        "k-NN radii exclude the point itself; a point is inside a ball when strictly closer (<).",
        "Per-image flags and distances are logged as artifacts.",
    ),
    values={"precision": HEADLINE, "recall": HEADLINE, "density": HEADLINE, "coverage": HEADLINE},
    ranges={"precision": (0.0, 1.0), "recall": (0.0, 1.0), "density": (0.0, None), "coverage": (0.0, 1.0)},
    per_image={"candidate": ("nearest_reference_distance", "realistic"), "reference": ("covered", "knn_radius")},
    params={"nearest_k": ("k of the k-th-nearest-neighbour radii", integer(1))},
)
def prdc(reference, candidate, *, nearest_k: int = 3, device: str | torch.device = "cpu") -> MetricValues:
    """Precision, recall, density and coverage of ``candidate`` against ``reference`` (higher is better).

    ``nearest_k`` is the k of the k-th-neighbour radii (3, as in Kynkäänniemi et al. and StyleGAN2-ADA);
    each set needs more than ``nearest_k`` samples. A point is inside a ball when its distance is
    strictly smaller (``<``) than the radius.

    Per-image scores (``.per_image``): for each candidate, ``nearest_reference_distance`` and
    ``realistic`` (1.0 when inside some reference ball — the precision flag); for each reference,
    ``covered`` (1.0 when some candidate is inside its ball — the coverage flag) and ``knn_radius``.

    >>> import numpy as np
    >>> from dsim.metrics import prdc
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=(500, 8))
    >>> same = prdc(reference, reference)
    >>> same  # doctest: +ELLIPSIS
    MetricValues({'precision': 1.0, 'recall': 1.0, 'density': 1.0, 'coverage': 1.0}, per_image=...)
    >>> shifted = prdc(reference, reference + 1.0)
    >>> shifted["precision"] < 0.9 and shifted["coverage"] < 0.9
    True
    >>> sorted(shifted.per_image["candidate"]), sorted(shifted.per_image["reference"])
    (['nearest_reference_distance', 'realistic'], ['covered', 'knn_radius'])
    """
    metric = "PRDC"
    x, y = feature_pair(reference, candidate, metric=metric, device=device)
    k = int(nearest_k)
    for role, n in (("reference", x.shape[0]), ("candidate", y.shape[0])):
        if n <= k:
            raise DsimError(
                f"{metric}: nearest_k={k} needs more than {k} samples per set, but the {role} set has {n}; "
                "pass more samples or a smaller nearest_k"
            )
    hood = neighbourhoods(x, y, k)
    inside = hood.cross.inside_count
    realistic = (inside > 0).to(torch.float64)
    covered = hood.cross.covered.to(torch.float64)
    values = {
        KEY_PRECISION: float(realistic.mean()),
        KEY_RECALL: float(hood.cross.recalled.to(torch.float64).mean()),
        KEY_DENSITY: float(inside.sum()) / (k * y.shape[0]),
        KEY_COVERAGE: float(covered.mean()),
    }
    per_image = {
        "candidate": {
            "nearest_reference_distance": hood.cross.nearest.cpu().numpy(),
            "realistic": realistic.cpu().numpy(),
        },
        "reference": {"covered": covered.cpu().numpy(), "knn_radius": hood.reference_radius.cpu().numpy()},
    }
    return MetricValues(values, per_image=per_image)
