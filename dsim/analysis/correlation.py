"""Correlation of a metric with entropy: Pearson r and its two-sided p-value, Spearman's rho, n.

Pairs where either value is not finite are left out (and not counted in ``n``). With fewer than 3 points,
or a constant series, the coefficients are NaN (undefined), never an exception.

>>> r = correlate([1, 2, 3, 4], [2.0, 4.1, 5.9, 8.2])
>>> round(r["pearson_r"], 4), r["spearman_rho"], r["n"]
(0.999, 1.0, 4)
"""

from __future__ import annotations

import warnings

import numpy as np

#: MLflow metric names of the entropy bias (each prefixed with its series: ``<column>.``)
ENTROPY_KEYS = {
    "pearson_r": "entropy_pearson_r",
    "pearson_p": "entropy_pearson_p",
    "spearman_rho": "entropy_spearman_rho",
    "n": "entropy_n",
}


def correlate(x, y) -> dict[str, float]:
    """``{"pearson_r", "pearson_p", "spearman_rho", "n"}`` of two equally long series (finite pairs only)."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"correlate: series of different lengths {x.size} and {y.size}")
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    out = {"pearson_r": float("nan"), "pearson_p": float("nan"), "spearman_rho": float("nan"), "n": int(x.size)}
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # near-constant input: scipy warns, values stay defined
        pearson = stats.pearsonr(x, y)
        spearman = stats.spearmanr(x, y)
    out.update(
        pearson_r=float(pearson.statistic), pearson_p=float(pearson.pvalue), spearman_rho=float(spearman.statistic)
    )
    return out


def entropy_bias_values(values, entropy, prefix: str = "") -> dict[str, float]:
    """:func:`correlate` of ``values`` with ``entropy``, keyed by the MLflow names (``prefix`` prepended)."""
    result = correlate(values, entropy)
    return {prefix + key: float(result[name]) for name, key in ENTROPY_KEYS.items()}


def entropy_bias_of(values: dict, column: str) -> dict[str, float | None] | None:
    """The entropy bias of one score series from a record's values — ``{"pearson_r", ...}`` — or ``None``.

    Reads ``<column>.entropy_*`` (and ``<side>.<column>.entropy_*``), and the unprefixed ``entropy_*`` keys of
    records written by dsim 0.1, which had them for a cell's only series."""
    for prefix in (f"{column}.", f"candidate.{column}.", f"reference.{column}.", ""):
        if prefix + ENTROPY_KEYS["pearson_r"] in values:
            return {name: values.get(prefix + key) for name, key in ENTROPY_KEYS.items()}
    return None
