"""The Vendi score (Friedman & Dieng 2023): the effective number of distinct samples in a set.

With K the n×n similarity matrix of a set (k(x, x) = 1) and λ the eigenvalues of K/n, the Vendi score of
order q is exp(−Σ λ log λ) for q = 1 (the exponential of the Shannon entropy of the spectrum) and
(Σ λ^q)^(1/(1−q)) otherwise: 1 for n copies of one sample, n for n mutually orthogonal ones. The kernel
is the cosine similarity (linear kernel on L2-normalised features, as dgm-eval's default); its eigenvalues
are those of XᵀX/n (D×D), so memory is O(D²) whatever n.
"""

from __future__ import annotations

import numpy as np
import torch

from dsim.metrics._checks import feature_pair, positive
from dsim.metrics._registry import DETAIL, HEADLINE, declare
from dsim.metrics._values import MetricValues

KERNEL = "cosine"


def vendi_score(features: torch.Tensor, q: float = 1.0) -> float:
    """The Vendi score of one N×D set (float64 tensor) under the cosine kernel."""
    x = features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)
    gram = (x.T @ x) / x.shape[0] if x.shape[0] > x.shape[1] else (x @ x.T) / x.shape[0]
    lam = torch.linalg.eigvalsh(gram).clamp_min(0).cpu().numpy()
    lam = lam[lam > 1e-15]
    lam = lam / lam.sum()
    if q == 1:
        return float(np.exp(-(lam * np.log(lam)).sum()))
    return float((lam**q).sum() ** (1.0 / (1.0 - q)))


@declare(
    "vendi",
    higher_is_better=True,
    comparative=False,
    doc="Vendi score: effective number of distinct samples of each set, cosine kernel (Friedman & Dieng 2023)",
    values={"vendi": HEADLINE, "vendi_reference": DETAIL, "vendi_ratio": DETAIL},
    notes=(
        "Kernel: cosine similarity (linear on L2-normalised features); vendi is the candidate's, "
        "vendi_ratio = candidate / reference.",
    ),
    params={"q": ("order of the score (1: exp of the Shannon entropy of the spectrum)", positive())},
)
def vendi(reference, candidate, *, q: float = 1.0, device: str | torch.device = "cpu") -> MetricValues:
    """Vendi score of each set (cosine kernel); higher is more diverse. ``vendi`` is the candidate's."""
    x, y = feature_pair(reference, candidate, metric="vendi", device=device)
    cand, ref = vendi_score(y, q), vendi_score(x, q)
    return MetricValues({"vendi": cand, "vendi_reference": ref, "vendi_ratio": cand / ref})
