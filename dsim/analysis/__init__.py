"""Analyses on top of the run records: entropy bias within a run and across a sweep, and the report.

- :mod:`~dsim.analysis.correlation`: Pearson r, its p-value, Spearman's rho and n between two series.
- :mod:`~dsim.analysis.within_run`: per-item entropy bias of one cell (metrics and plots it adds).
- :mod:`~dsim.analysis.sweep`: across the cells of a multirun (logged on the sweep's parent run).
- :mod:`~dsim.analysis.transfer`: a downstream score against the distance (``analysis=transfer``): coefficients
  with intervals and permutation p-values, the slope, per cell and across a sweep's candidates.
- :mod:`~dsim.analysis.report`: the pivot of runs read back from an MLflow store (``dsim report``).
- :mod:`~dsim.analysis.plots`: the matplotlib figures (Agg, no display needed).
"""

from dsim.analysis.correlation import ENTROPY_KEYS, correlate, entropy_bias_values

__all__ = ["ENTROPY_KEYS", "correlate", "entropy_bias_values"]
