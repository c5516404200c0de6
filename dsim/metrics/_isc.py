"""Inception Score (Salimans et al. 2016) from a classifier's logits, split scheme as torch-fidelity.

For class probabilities p_i = softmax(logits_i) (float64) in one split S with marginal q = mean_{i∈S} p_i::

    IS(S) = exp( mean_{i∈S} KL(p_i ‖ q) ) = exp( H(q) - mean_{i∈S} H(p_i) )

The N rows are shuffled with ``np.random.RandomState(seed).permutation(N)`` (``seed=None``: input order)
and cut into ``splits`` consecutive parts at rows ⌊s·N/splits⌋; the score is the mean over splits and
``isc_std`` the population (ddof=0) standard deviation — torch-fidelity's ``isc_features_to_metric`` with
``rng_seed=seed`` (``samples_shuffle=False`` for ``seed=None``). torch-fidelity's own default seed is
2020; ours is 0, like every dsim metric.
"""

from __future__ import annotations

import numpy as np
import torch

from dsim.metrics._checks import clip_parameter, feature_pair, integer, optional
from dsim.metrics._registry import DETAIL, HEADLINE, SPREAD, declare
from dsim.metrics._values import MetricValues

KEY_ISC, KEY_ISC_STD, KEY_ISC_REFERENCE = "isc", "isc_std", "isc_reference"


@declare(
    "isc",
    higher_is_better=True,
    comparative=False,
    input="logits",
    doc="Inception Score of the candidate set from the extractor's class logits",
    notes=("The extractor's logits layer is chosen automatically; isc_reference is the reference set's score.",),
    values={"isc": HEADLINE, "isc_std": SPREAD, "isc_reference": DETAIL},
    params={
        "splits": ("consecutive splits for the per-split score (clipped to the set size)", integer(1)),
        "seed": ("seed of the shuffle before splitting; null: no shuffle", optional(integer(0))),
    },
)
def isc(
    reference,
    candidate,
    *,
    splits: int = 10,
    seed: int | None = 0,
    device: str | torch.device = "cpu",
) -> MetricValues:
    """Inception Score of the candidate set's class logits (N×C); higher is better.

    Takes **logits** (the extractor's classification layer, before softmax), not pooled features.
    Returns ``isc`` (mean over ``splits``), ``isc_std`` and ``isc_reference``: the reference set's score,
    computed the same way, as the yardstick the candidate's score is read against. ``splits`` larger
    than a set is clipped, with a warning, to its size.

    >>> import numpy as np
    >>> from dsim.metrics import isc
    >>> rng = np.random.default_rng(0)
    >>> confident = 20.0 * np.eye(10)[rng.integers(0, 10, size=1000)]  # sharp, diverse predictions
    >>> uniform = np.zeros((1000, 10))                                  # no opinion at all
    >>> values = isc(confident, uniform)
    >>> round(values["isc"], 6), values["isc_reference"] > 9
    (1.0, True)
    """
    metric = "IS"
    x, y = feature_pair(reference, candidate, metric=metric, device=device)
    splits = int(splits)
    mean, std = inception_score(y, splits=splits, seed=seed, role="candidate")
    reference_mean, _ = inception_score(x, splits=splits, seed=seed, role="reference")
    return MetricValues({KEY_ISC: mean, KEY_ISC_STD: std, KEY_ISC_REFERENCE: reference_mean})


def inception_score(
    logits: torch.Tensor, *, splits: int, seed: int | None, role: str = "candidate"
) -> tuple[float, float]:
    """Mean and population std of the per-split Inception Score of an N×C float64 logits tensor."""
    n = logits.shape[0]
    splits = clip_parameter(splits, n, name="splits", metric="IS", why=f"the {role} set ({n} samples)", stacklevel=3)
    if seed is not None:
        logits = logits[torch.from_numpy(np.random.RandomState(seed).permutation(n)).to(logits.device)]
    log_p = torch.log_softmax(logits.to(torch.float64), dim=1)
    p = log_p.exp()
    neg_entropy = (p * log_p).sum(1)  # -H(p_i), per row
    scores = []
    for s in range(splits):
        start, stop = s * n // splits, (s + 1) * n // splits
        q = p[start:stop].mean(0)
        marginal_entropy = -torch.special.xlogy(q, q).sum()
        scores.append(float(torch.exp(marginal_entropy + neg_entropy[start:stop].mean())))
    return float(np.mean(scores)), float(np.std(scores))
