"""Opt-in bootstrap intervals for any registered metric.

``replicates`` times, both feature sets are resampled with replacement (to their own sizes) — or, for a
paired metric (``paired=True``: row i of one set goes with row i of the other), the pairs are — the metric
is recomputed with the same parameters, and the 2.5th and 97.5th percentiles of each scalar value become
``<value>_ci_low`` and ``<value>_ci_high`` (a 95% percentile interval; ``*_std`` values get none).
Resampling indices come from ``np.random.default_rng(seed)``: per replicate, first the reference
indices, then the candidate indices (one draw of pair indices when paired) — the same seed gives the
same intervals.

Read the interval as the spread of the estimate under resampling, not as a bias correction: for
estimators that are biased at finite N (FID), or that see the duplicate rows of a resample as
zero-distance neighbours (PRDC's k-NN radii shrink, so precision and density drop), the interval can sit
to one side of the point estimate. Metric warnings (e.g. subset clipping) are shown once, by the point
estimate, and silenced in the replicates.
"""

from __future__ import annotations

import warnings
from typing import Callable, Mapping

import numpy as np
import torch

from dsim.errors import DsimError
from dsim.metrics._checks import MetricWarning, positive_int

LOW, HIGH = 2.5, 97.5


def interval_keys(name: str) -> tuple[str, str]:
    """The result keys of ``name``'s interval bounds."""
    return f"{name}_ci_low", f"{name}_ci_high"


def bootstrap_intervals(
    fn: Callable[..., Mapping[str, float]],
    reference,
    candidate,
    *,
    replicates: int,
    seed: int = 0,
    params: Mapping | None = None,
    keys: list[str] | None = None,
    paired: bool = False,
) -> dict[str, float]:
    """``{<key>_ci_low, <key>_ci_high}`` for each scalar ``key`` of ``fn`` (all but ``*_std`` by default).

    >>> import numpy as np
    >>> from dsim.metrics import cmmd
    >>> from dsim.metrics.bootstrap import bootstrap_intervals
    >>> rng = np.random.default_rng(0)
    >>> reference, candidate = rng.normal(size=(200, 8)), rng.normal(0.5, 1.0, size=(200, 8))
    >>> ci = bootstrap_intervals(cmmd, reference, candidate, replicates=20, seed=0)
    >>> sorted(ci), ci["cmmd_ci_low"] < cmmd(reference, candidate)["cmmd"] < ci["cmmd_ci_high"]
    (['cmmd_ci_high', 'cmmd_ci_low'], True)
    """
    replicates = positive_int(replicates, name="bootstrap", metric="bootstrap")
    seed = positive_int(seed, name="bootstrap_seed", metric="bootstrap", minimum=0)
    params = dict(params or {})
    ref, cand = _indexable(reference), _indexable(candidate)
    if paired and len(ref) != len(cand):
        raise DsimError(f"bootstrap: paired sets must have the same length, got {len(ref)} and {len(cand)}")
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(replicates):
        i = rng.integers(0, len(ref), size=len(ref))
        j = i if paired else rng.integers(0, len(cand), size=len(cand))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetricWarning)
            values = fn(_take(ref, i), _take(cand, j), **params)
        for key in keys if keys is not None else [k for k in values if not k.endswith("_std")]:
            samples.setdefault(key, []).append(float(values[key]))
    out = {}
    for key, draws in samples.items():
        low, high = np.percentile(np.asarray(draws, dtype=np.float64), [LOW, HIGH])
        key_low, key_high = interval_keys(key)
        out[key_low], out[key_high] = float(low), float(high)
    return out


def _indexable(x):
    return x if torch.is_tensor(x) else np.asarray(x)


def _take(x, idx: np.ndarray):
    if torch.is_tensor(x):
        return x[torch.from_numpy(idx).to(x.device)]
    return x[idx]
