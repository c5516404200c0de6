"""The noise floor of a distance: how far apart two samples of one distribution are, at this n, in this space.

A distance means little on its own: FID 63 through one extractor at 100 images may be as close as two
samples of one photo set get, and far through another. The floor says which. Each of ``repeats`` seeded
splits (one generator, seeded by ``seed``) draws, without replacement,

- ``A``: ``m = n_reference // 2`` rows of the reference, and ``B``: ``s`` of its other rows;
- ``C``: ``s`` rows of the candidate, where ``s = min(n_reference - m, n_candidate)`` — of the candidate rows
  that are not copies of A's images, when the two sets share images (the same files, or the candidate is
  the reference perturbed: ``counterparts``);

and computes the metric twice: ``A`` against ``B`` (two samples of one distribution: the floor) and ``A``
against ``C`` (the value at the same sizes). For each headline value ``<v>`` it reports

- ``<v>_floor``: the median of ``A`` vs ``B`` over the splits, and ``<v>_floor_ci_low`` / ``_floor_ci_high``
  their 2.5th and 97.5th percentiles (with 10 splits, close to their range);
- ``<v>_at_floor_n``: the median of ``A`` vs ``C``: the value at the floor's sizes;
- ``<v>_over_floor``: ``<v>_at_floor_n / <v>_floor`` — 1 means "as far apart as two samples of the reference",
  10 "ten times that". NaN (with a caveat) where the floor's interval reaches 0 or below: an unbiased estimator
  such as KID averages 0 between two samples of one distribution, so a ratio to its median floor means
  nothing; read such a value against ``<v>_floor_ci_high`` instead;
- ``floor_n`` (``m``) and ``floor_n_compared`` (``s``).

Why the ratio is taken at the floor's sizes, not to the full-size value: biased estimators move with n (FID's
finite-n bias is about ``tr(Σ)·(1/n₁ + 1/n₂)``; k-NN radii shrink as n grows), so a floor at ``n/2`` is not
the floor at ``n`` — on 100 photos through EfficientNet-Lite0, FID of two halves is ~100 while FID of two
different 100-photo sets is 63. Comparing like with like, ``A`` vs ``C`` against ``A`` vs ``B``, needs no model
of that bias.

The streamed form (:func:`streamed_floor`) works from :class:`~dsim.metrics._fid.FeatureStats` of row subsets
(FID without holding the features: three D×D statistics at a time); :func:`noise_floor` from feature arrays.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import numpy as np

from dsim.errors import DsimError
from dsim.metrics._checks import MetricWarning
from dsim.metrics.bootstrap import HIGH, LEVEL, LOW

#: how many random splits of the reference a floor takes by default (the seed is the metric's bootstrap seed)
REPEATS = 10
COUNTS = ("floor_n", "floor_n_compared")


def floor_keys(name: str) -> tuple[str, ...]:
    """The result keys of value ``name``'s floor: median, interval bounds, the value at the floor's sizes, ratio."""
    return f"{name}_floor", f"{name}_floor_ci_low", f"{name}_floor_ci_high", f"{name}_at_floor_n", f"{name}_over_floor"


def method(values: Mapping[str, float], *, repeats: int = REPEATS, seed: int = 0) -> dict:
    """How a floor was made, as recorded with it (``result.json``'s ``floor``)."""
    return {
        "method": "the metric between two disjoint seeded samples of the reference (A vs B: the floor) and between "
        "A and a seeded sample of the candidate of B's size (A vs C: the value at the floor's sizes)",
        "statistic": "median over the splits; interval: their 2.5th and 97.5th percentiles",
        "ratio": "<value>_over_floor = <value>_at_floor_n / <value>_floor",
        "repeats": repeats,
        "seed": seed,
        "sizes": {"A": int(values["floor_n"]), "B and C": int(values["floor_n_compared"])},
        "level": LEVEL,
    }


def splits(
    n_reference: int,
    n_candidate: int,
    *,
    repeats: int = REPEATS,
    seed: int = 0,
    counterparts: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``repeats`` seeded draws of (A, B, C): sorted row indices, A and B disjoint rows of the reference, C rows
    of the candidate (sizes in the module's docstring).

    ``counterparts`` (one per candidate row: the reference row it is a copy of — the same image, or the
    same image perturbed — or -1) keeps A's own images out of C: C is drawn from the candidate rows whose
    counterpart is not in A, so REF against REF perturbed compares A with *other* images, and the ratio
    is 1 when the perturbation changes nothing.

    >>> [tuple(rows.tolist() for rows in split) for split in splits(5, 8, repeats=2, seed=0)]
    [([2, 4], [0, 1, 3], [3, 4, 7]), ([1, 4], [0, 2, 3], [3, 6, 7])]
    >>> [(a.tolist(), c.tolist()) for a, _, c in splits(6, 6, repeats=2, counterparts=np.arange(6))]
    [([2, 3, 5], [0, 1, 4]), ([1, 4, 5], [0, 2, 3])]
    """
    if n_reference < 4:
        raise DsimError(
            f"metric.floor draws two disjoint samples of the reference: it needs at least 4 images, got {n_reference}"
        )
    if n_candidate < 2:
        raise DsimError(f"metric.floor needs at least 2 candidate images, got {n_candidate}")
    if repeats < 2:
        raise DsimError(f"metric.floor needs at least 2 repeats for a median and an interval, got {repeats}")
    if counterparts is not None and len(counterparts) != n_candidate:
        raise DsimError(f"metric.floor: {len(counterparts)} counterparts for {n_candidate} candidate rows")
    m = n_reference // 2
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(n_reference) for _ in range(repeats)]
    eligible = [_eligible(n_candidate, counterparts, order[:m]) for order in orders]
    s = min(n_reference - m, *(len(rows) for rows in eligible))
    if s < 2:
        raise DsimError("metric.floor: the candidate has fewer than 2 images that are not copies of the reference's")
    return [
        (np.sort(order[:m]), np.sort(order[m : m + s]), np.sort(rng.choice(rows, size=s, replace=False)))
        for order, rows in zip(orders, eligible)
    ]


def _eligible(n_candidate: int, counterparts: np.ndarray | None, first: np.ndarray) -> np.ndarray:
    """The candidate rows C may take: all, or those whose counterpart is not in ``first`` (A)."""
    if counterparts is None:
        return np.arange(n_candidate)
    return np.flatnonzero(~np.isin(np.asarray(counterparts), first))


def _sizes(drawn: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[int, int]:
    return len(drawn[0][0]), len(drawn[0][1])


def noise_floor(
    fn: Callable[..., Mapping[str, float]],
    reference,
    candidate,
    values: Mapping[str, float],
    *,
    keys: list[str],
    repeats: int = REPEATS,
    seed: int = 0,
    params: Mapping | None = None,
    counterparts: np.ndarray | None = None,
) -> dict[str, float]:
    """The floor of each of ``keys`` (headline values of ``fn``, whose full-set ``values`` are given), from
    feature rows (arrays or tensors) of both sides; per-row labels in ``params`` travel with their rows;
    ``counterparts`` as in :func:`splits`.

    >>> import numpy as np
    >>> from dsim.metrics import fid
    >>> rng = np.random.default_rng(0)
    >>> reference, same, shifted = rng.normal(size=(400, 4)), rng.normal(size=(400, 4)), rng.normal(1, 1, (400, 4))
    >>> near = noise_floor(fid, reference, same, fid(reference, same), keys=["fid"])
    >>> far = noise_floor(fid, reference, shifted, fid(reference, shifted), keys=["fid"])
    >>> 0.5 < near["fid_over_floor"] < 2, far["fid_over_floor"] > 20
    (True, True)
    """
    params = dict(params or {})
    labels = {side: params.get(f"{side}_labels") for side in ("reference", "candidate")}

    def between(x, x_rows, y, y_rows, y_side):
        given = dict(params)
        if labels["reference"] is not None:  # labels travel with their rows (otdd)
            given["reference_labels"] = np.asarray(labels["reference"])[x_rows]
            given["candidate_labels"] = np.asarray(labels[y_side])[y_rows]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetricWarning)
            return fn(x[x_rows], y[y_rows], **given)

    drawn = splits(len(reference), len(candidate), repeats=repeats, seed=seed, counterparts=counterparts)
    draws = _draws(
        keys,
        (
            (between(reference, a, reference, b, "reference"), between(reference, a, candidate, c, "candidate"))
            for a, b, c in drawn
        ),
    )
    return summarise(draws, sizes=_sizes(drawn))


def streamed_floor(
    stats_of: Callable[[str, np.ndarray], object],
    n_reference: int,
    n_candidate: int,
    from_stats: Callable[..., Mapping[str, float]],
    *,
    keys: list[str],
    repeats: int = REPEATS,
    seed: int = 0,
    params: Mapping | None = None,
    counterparts: np.ndarray | None = None,
) -> dict[str, float]:
    """:func:`noise_floor` of a metric with a streamed form (FID): ``stats_of(side, rows)`` gives the
    :class:`~dsim.metrics._fid.FeatureStats` of those rows of ``"reference"`` or ``"candidate"`` (streamed
    from the store), ``from_stats`` the metric from two of them. Equal to :func:`noise_floor` on the same rows
    (to float64 rounding); memory: three D×D statistics at a time."""
    params = dict(params or {})
    drawn = splits(n_reference, n_candidate, repeats=repeats, seed=seed, counterparts=counterparts)

    def per_split():
        for a, b, c in drawn:
            first = stats_of("reference", a)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MetricWarning)
                yield (
                    from_stats(first, stats_of("reference", b), **params),
                    from_stats(first, stats_of("candidate", c), **params),
                )

    return summarise(_draws(keys, per_split()), sizes=_sizes(drawn))


def _draws(keys: list[str], pairs) -> dict[str, tuple[list[float], list[float]]]:
    """``{key: (floor draws, value-at-floor-sizes draws)}`` from ``(A vs B, A vs C)`` value pairs."""
    out: dict[str, tuple[list[float], list[float]]] = {key: ([], []) for key in keys}
    for floor_values, compared_values in pairs:
        for key in keys:
            out[key][0].append(float(floor_values[key]))
            out[key][1].append(float(compared_values[key]))
    return out


def summarise(draws: Mapping[str, tuple[list[float], list[float]]], *, sizes: tuple[int, int]) -> dict[str, float]:
    """The floor keys of each drawn value (see the module's docstring), ``floor_n`` and ``floor_n_compared``."""
    out: dict[str, float] = {}
    for key, (floors, compared) in draws.items():
        median_key, low_key, high_key, at_key, ratio_key = floor_keys(key)
        floors_ = _finite(floors)
        at = _finite(compared)
        out[at_key] = float(np.median(at)) if at.size else float("nan")
        if not floors_.size:
            out[median_key] = out[low_key] = out[high_key] = out[ratio_key] = float("nan")
            continue
        floor = float(np.median(floors_))
        low, high = (float(v) for v in np.percentile(floors_, [LOW, HIGH]))
        out[median_key], out[low_key], out[high_key] = floor, low, high
        out[ratio_key] = out[at_key] / floor if low > 0 else float("nan")
        if low <= 0:
            warnings.warn(
                f"{key}'s noise floor {floor:.3g} [{low:.3g}, {high:.3g}] reaches 0 (an unbiased estimator averages 0 "
                f"between two samples of one distribution), so {ratio_key} is undefined: read {at_key} = "
                f"{out[at_key]:.3g} against {high_key} = {high:.3g}",
                MetricWarning,
                stacklevel=3,
            )
    out.update(zip(COUNTS, (float(size) for size in sizes)))
    return out


def _finite(values: list[float]) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    return a[np.isfinite(a)]
