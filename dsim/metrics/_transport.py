"""Optimal-transport distances between two feature sets: exact ``emd``, debiased ``sinkhorn``, ``sliced_wasserstein``.

Every one puts uniform weights on the images of each set and uses the squared Euclidean ground cost
C(x, y) = |x - y|², so the three are in the same units (W2², squared feature distance):

- ``emd``: W2² = min over transport plans π of Σ π_ij C_ij, solved exactly by POT's network simplex
  (``ot.emd``). It needs the full N×M cost matrix (16·N·M bytes with the plan), so it refuses sets past
  :data:`MAX_DENSE_PAIRS` pairs; in a cell ``metric.params.max_samples`` (default 4096) draws a seeded
  sample of each larger side first.
- ``sinkhorn``: the debiased Sinkhorn divergence S_ε(α, β) = OT_ε(α, β) - ½ OT_ε(α, α) - ½ OT_ε(β, β)
  (Feydy et al. 2019), with OT_ε(α, β) = min_π Σ π_ij C_ij + ε KL(π | α⊗β), by geomloss (ε-scaling,
  tensorized backend; chosen over POT's log-domain solver by ``benchmarks/bench_ot.py``). It is 0 for
  identical sets, positive otherwise, and tends to W2² as ε → 0. geomloss' cost for p = 2 is |x - y|²/2:
  S_ε with cost C equals 2·S_{ε/2} with cost C/2, which is what is computed.
- ``sliced_wasserstein``: SW2² = the mean over ``projections`` seeded random unit directions θ of the
  1-D W2² between the projected sets (θ·x, θ·y), by POT's ``ot.sliced_wasserstein_distance`` (squared).
  It costs O((N + M)·D·P) time and O((N + M)·P) memory: the one for a million images. SW2² ≤ W2².

Each returns a per-image ``transport_cost`` for the candidate images (the selection and transfer
analyses' distance of an image, like O_dist's I_dist): the mean ground cost of the mass that arrives at
that image — Σ_i π_ij C_ij / b_j for the optimal (emd) or entropic (sinkhorn) plan, the mean over
projections of the squared 1-D displacement at that image's quantile (sliced). Its mean over the
candidates is the emd value exactly, the entropic plan's transport cost for sinkhorn, and SW2² when
both sets have the same size.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from dsim.errors import DsimError
from dsim.metrics._checks import MetricWarning, between, feature_pair, integer, optional, positive
from dsim.metrics._registry import COUNT, DETAIL, HEADLINE, declare
from dsim.metrics._values import MetricValues

#: the most reference × candidate pairs an exact transport problem takes (two float64 N×M matrices: 1.1 GB)
MAX_DENSE_PAIRS = 8192 * 8192
#: the default seeded sample per side a cell draws for the metrics that solve on a dense N×M problem
DENSE_SAMPLES = 4096
#: rows of candidates whose plan column is formed at once (per-image costs in bounded memory)
CHUNK_ROWS = 1024
COST_COLUMN = "transport_cost"
MAX_PROJECTIONS = 65536
#: the epsilons the float32 Sinkhorn iterations hold: from 1e-30 to 1e8 x the reference's mean squared distance
MIN_EPSILON, MAX_EPSILON_FACTOR = 1e-30, 1e8
DENSE_SAMPLING = {
    "max_samples": (
        DENSE_SAMPLES,
        "N: a seeded sample of N rows of a larger side (the solver needs an N×N cost matrix); null: every row",
        optional(integer(2)),
    )
}


def uniform(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


def check_dense(n: int, m: int, *, metric: str) -> None:
    """Refuse an exact problem whose cost matrix would not fit (a short error that says what to do)."""
    if n * m > MAX_DENSE_PAIRS:
        gib = 16 * n * m / 2**30
        raise DsimError(
            f"{metric}: {n} x {m} images make a {gib:.0f} GiB transport problem; sample each side first "
            f"(in a cell metric.params.max_samples={DENSE_SAMPLES}, in Python dsim.metrics.compute(..., "
            f"max_samples={DENSE_SAMPLES})) or use sliced_wasserstein, which takes every image"
        )


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """The N×M squared Euclidean cost matrix (float64, from coordinate differences: exact, never negative)."""
    return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist").pow_(2).cpu().numpy()


def exact_plan(cost: np.ndarray, *, metric: str) -> np.ndarray:
    """The optimal plan between uniform weights for ``cost`` (POT's network simplex), warning if it stopped early."""
    import ot

    n, m = cost.shape
    plan, log = ot.emd(uniform(n), uniform(m), cost, numItermax=max(100_000, 100 * (n + m)), log=True)
    if log.get("warning"):
        warnings.warn(f"{metric}: the exact solver stopped early ({log['warning']})", MetricWarning, stacklevel=3)
    return plan


def arriving_cost(plan: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Σ_i π_ij C_ij / Σ_i π_ij for every column j: the mean cost of the mass that reaches candidate j."""
    return (plan * cost).sum(0) / np.maximum(plan.sum(0), np.finfo(float).tiny)


@declare(
    "emd",
    higher_is_better=False,
    doc="Exact W2^2 (earth mover's distance, squared Euclidean cost, uniform weights) by POT's network simplex",
    values={"emd": HEADLINE},
    ranges={"emd": (0.0, None)},
    notes=(
        "Solves the full N x M problem: cells sample max_samples rows of a larger side (default 4096); "
        "per image: transport_cost, the mean cost of the mass reaching each candidate.",
    ),
    per_image={"candidate": (COST_COLUMN,)},
    cell_params=DENSE_SAMPLING,
)
def emd(reference, candidate, *, device: str | torch.device = "cpu") -> MetricValues:
    """Exact W2² between the two sets (lower is closer), with each candidate's ``transport_cost``.

    >>> import numpy as np
    >>> from dsim.metrics import emd
    >>> x = np.random.default_rng(0).normal(size=(50, 3))
    >>> round(emd(x, x)["emd"], 12), round(emd(x, x + 2.0)["emd"], 6)
    (0.0, 12.0)
    """
    x, y = feature_pair(reference, candidate, metric="emd", device=device)
    check_dense(len(x), len(y), metric="emd")
    cost = squared_distances(x, y)
    plan = exact_plan(cost, metric="emd")
    return MetricValues(
        {"emd": float((plan * cost).sum())}, per_image={"candidate": {COST_COLUMN: arriving_cost(plan, cost)}}
    )


def sinkhorn_epsilon(x: torch.Tensor, epsilon: float | None, blur: float | None) -> float:
    """ε from ``epsilon`` or ``blur`` (ε = blur², geomloss' length scale); neither: 1 % of the mean squared
    distance between two reference images (2·tr Cov(reference)), so the default follows the features' scale.
    A given ε must lie in [1e-30, 1e8 × that distance]: past it the divergence has reached its large-ε limit
    and the solver's float32 arithmetic loses it (measured: 0 instead of 4 at ε = 1e30 for a unit shift)."""
    if epsilon is not None and blur is not None:
        raise DsimError("sinkhorn: give metric.params.epsilon or metric.params.blur (blur = sqrt(epsilon)), not both")
    spread = float(2 * x.var(0, unbiased=False).sum())
    eps = float(blur) * float(blur) if blur is not None else epsilon  # a product: inf, not OverflowError, past 1e154
    if eps is not None:
        eps, given = float(eps), (f"blur={blur}" if blur is not None else f"epsilon={epsilon}")
        high = MAX_EPSILON_FACTOR * spread if spread > 0 else MAX_EPSILON_FACTOR
        if not MIN_EPSILON <= eps <= high:
            raise DsimError(
                f"sinkhorn: {given} gives epsilon={eps:.3g}, outside [{MIN_EPSILON:g}, {high:.3g}] (1e8 x the "
                "reference's mean squared distance) where the solver's float32 arithmetic holds; give an epsilon "
                f"near {0.01 * spread:.3g} (the default, 1% of it)"
            )
        return eps
    if spread <= 0:
        raise DsimError(
            "sinkhorn: the reference images all have the same features, so no default epsilon follows from "
            "their spread; give metric.params.epsilon"
        )
    return 0.01 * spread


@declare(
    "sinkhorn",
    higher_is_better=False,
    doc="Debiased Sinkhorn divergence (squared Euclidean cost, entropic epsilon) by geomloss; 0 for identical sets",
    values={"sinkhorn": HEADLINE, "sinkhorn_epsilon": DETAIL, "sinkhorn_transport": DETAIL},
    ranges={"sinkhorn": (0.0, None)},
    notes=(
        "epsilon (or blur = sqrt(epsilon)) null: 1% of the reference's mean squared pairwise distance, "
        "recorded as sinkhorn_epsilon; sinkhorn_transport is the entropic plan's transport cost.",
    ),
    per_image={"candidate": (COST_COLUMN,)},
    params={
        "epsilon": (
            "entropic regularisation, in squared feature units; null: from the reference's spread",
            optional(positive()),
        ),
        "blur": (
            "geomloss' length scale instead of epsilon (epsilon = blur^2); null: use epsilon",
            optional(positive()),
        ),
        "scaling": ("geomloss' epsilon-scaling factor: closer to 1 is more accurate and slower", between(0, 1)),
    },
    cell_params=DENSE_SAMPLING,
)
def sinkhorn(
    reference,
    candidate,
    *,
    epsilon: float | None = None,
    blur: float | None = None,
    scaling: float = 0.9,
    device: str | torch.device = "cpu",
) -> MetricValues:
    """The debiased Sinkhorn divergence S_ε between the sets (lower is closer) and each candidate's
    ``transport_cost`` under the entropic plan of OT_ε(reference, candidate).

    >>> import numpy as np
    >>> from dsim.metrics import sinkhorn
    >>> x = np.random.default_rng(0).normal(size=(60, 3))
    >>> near, far = sinkhorn(x, x + 0.5, epsilon=0.1), sinkhorn(x, x + 2.0, epsilon=0.1)
    >>> abs(sinkhorn(x, x, epsilon=0.1)["sinkhorn"]) < 1e-6, near["sinkhorn"] < far["sinkhorn"]
    (True, True)
    """
    from geomloss import SamplesLoss

    x, y = feature_pair(reference, candidate, metric="sinkhorn", device=device)
    check_dense(len(x), len(y), metric="sinkhorn")
    eps = sinkhorn_epsilon(x, epsilon, blur)
    # cost C = |x-y|^2 at eps  ==  2 x (geomloss' cost |x-y|^2 / 2 at eps / 2)
    options = {"loss": "sinkhorn", "p": 2, "blur": (eps / 2) ** 0.5, "scaling": scaling, "backend": "tensorized"}
    divergence = 2 * float(SamplesLoss(debias=True, **options)(x, y))
    f, _ = SamplesLoss(debias=False, potentials=True, **options)(x, y)
    costs = entropic_arriving_cost(x, y, 2 * f.reshape(-1), eps)
    return MetricValues(
        {"sinkhorn": divergence, "sinkhorn_epsilon": eps, "sinkhorn_transport": float(costs.mean())},
        per_image={"candidate": {COST_COLUMN: costs}},
    )


def entropic_arriving_cost(x: torch.Tensor, y: torch.Tensor, f: torch.Tensor, eps: float) -> np.ndarray:
    """Each candidate's mean cost under the entropic plan, π(i | j) ∝ a_i exp((f_i - C_ij) / ε), from the
    reference potential ``f`` (in chunks of candidates: memory N × :data:`CHUNK_ROWS`)."""
    log_a = torch.full((len(x),), -float(np.log(len(x))), dtype=x.dtype, device=x.device)
    out = np.empty(len(y))
    for start in range(0, len(y), CHUNK_ROWS):
        cost = torch.cdist(x, y[start : start + CHUNK_ROWS], compute_mode="donot_use_mm_for_euclid_dist").pow_(2)
        conditional = torch.softmax(log_a[:, None] + (f[:, None] - cost) / eps, dim=0)
        out[start : start + CHUNK_ROWS] = (conditional * cost).sum(0).cpu().numpy()
    return out


def unit_directions(dim: int, count: int, seed: int) -> np.ndarray:
    """``count`` seeded directions uniform on the unit sphere of R^dim, as the columns of a dim × count matrix."""
    theta = np.random.default_rng([int(seed), 0x51CE]).normal(size=(dim, count))
    return theta / np.linalg.norm(theta, axis=0, keepdims=True)


def quantile_displacement(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Per candidate row: the mean over columns of (py_j - F_x⁻¹(u_j))², u_j the mid-rank level of py_j in its
    column and F_x⁻¹ the reference column's empirical quantile function (the 1-D optimal map)."""
    n, m = len(px), len(py)
    sorted_x = np.sort(px, axis=0)
    ranks = np.argsort(np.argsort(py, axis=0, kind="stable"), axis=0, kind="stable")
    levels = np.minimum(((ranks + 0.5) * n / m).astype(np.int64), n - 1)
    matched = np.take_along_axis(sorted_x, levels, axis=0)
    return ((py - matched) ** 2).mean(1)


@declare(
    "sliced_wasserstein",
    higher_is_better=False,
    doc="Sliced W2^2: mean 1-D W2^2 over seeded random projections (POT); every image, O(N) memory",
    values={"sliced_wasserstein": HEADLINE, "projections": COUNT},
    ranges={"sliced_wasserstein": (0.0, None)},
    notes=("A lower bound on emd's W2^2; per image: transport_cost, the mean squared 1-D displacement.",),
    per_image={"candidate": (COST_COLUMN,)},
    params={
        "projections": ("random unit directions averaged over", integer(1)),
        "seed": ("seed of the directions", integer(0)),
    },
)
def sliced_wasserstein(
    reference, candidate, *, projections: int = 128, seed: int = 0, device: str | torch.device = "cpu"
) -> MetricValues:
    """SW2² between the sets (lower is closer), with each candidate's ``transport_cost``.

    >>> import numpy as np
    >>> from dsim.metrics import emd, sliced_wasserstein
    >>> x = np.random.default_rng(0).normal(size=(80, 4))
    >>> sw, w2 = sliced_wasserstein(x, x + 1.0)["sliced_wasserstein"], emd(x, x + 1.0)["emd"]
    >>> 0 < sw <= w2
    True
    """
    import ot

    if projections > MAX_PROJECTIONS:
        raise DsimError(
            f"sliced_wasserstein: projections={projections} would hold {projections} projected copies of each set; "
            f"give at most {MAX_PROJECTIONS} (a few hundred are enough for 3 digits)"
        )
    x, y = feature_pair(reference, candidate, metric="sliced_wasserstein", device=device)
    xn, yn = x.cpu().numpy(), y.cpu().numpy()
    theta = unit_directions(xn.shape[1], projections, seed)
    value = float(ot.sliced_wasserstein_distance(xn, yn, p=2, projections=theta)) ** 2
    costs = quantile_displacement(xn @ theta, yn @ theta)
    return MetricValues(
        {"sliced_wasserstein": value, "projections": float(projections)}, per_image={"candidate": {COST_COLUMN: costs}}
    )
