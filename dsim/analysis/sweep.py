"""Across the cells of a sweep: entropy bias of each metric, and how the metrics agree with each other.

For every *series* — one metric seen through one extractor (``efficientnet_lite0.fid``; a paired metric
alone, ``psnr``, when its cells have no extractor), its primary value in each cell — dsim computes:

- the Pearson r (p-value, Spearman's rho, n) between the series' values and the **candidate set's mean
  entropy** (mean over its images of :func:`dsim.embeddings.entropy.image_entropy`), across the cells: logged on the
  sweep's parent run as ``<series>.entropy_pearson_r``, ``.entropy_pearson_p``, ``.entropy_spearman_rho``,
  ``.entropy_n``, and written as ``entropy_correlation.csv`` with a scatter plot ``entropy_across_cells.png``
  (every cell a point; a least-squares line only in a panel of at least
  :data:`~dsim.analysis.plots.MIN_FIT_POINTS` cells, else the panel says why there is none);
- the **metric × metric** Pearson correlation matrix across the cells (series as columns, the dataset
  pairs as rows; at least 3 common pairs, else NaN): ``metric_correlation.csv`` and ``metric_correlation.png``.

The cells' values themselves are in ``cells.csv`` (one row per pair, a column per series, plus the
candidate entropy). Fewer than 3 cells in a series give NaN coefficients, never an error.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from dsim.analysis import plots
from dsim.analysis.correlation import ENTROPY_KEYS, correlate
from dsim.embeddings.entropy import dataset_entropies
from dsim.errors import DsimError
from dsim.records import CellRecord
from dsim.util.fileio import atomic_write_text

ANALYSIS_DIR = "sweep_analysis"


def series_name(extractor: str, metric: str) -> str:
    return metric if extractor in ("none", "", None) else f"{extractor}.{metric}"


def cells_frame(records: list[dict]) -> pd.DataFrame:
    """One row per cell with a primary value: ``pair``, ``candidate``, ``series``, ``value``."""
    rows = []
    for record in map(CellRecord.from_json, records):
        if record.metric not in record.values:
            continue
        rows.append(
            {
                "pair": record.pair,
                "candidate": record.candidate.path,
                "series": series_name(record.extractor, record.metric),
                "value": float(record.values[record.metric]),
            }
        )
    return pd.DataFrame(rows, columns=["pair", "candidate", "series", "value"])


def candidate_entropies(candidates, *, cache_dir) -> dict[str, float]:
    """Mean image entropy of each candidate folder (NaN, with a warning, for a folder that is gone)."""
    out = {}
    for folder in sorted(set(candidates)):
        try:
            values = list(dataset_entropies(folder, cache_dir=cache_dir, on_error="skip").values())
            out[folder] = float(np.mean(values)) if values else float("nan")
        except DsimError as error:
            warnings.warn(f"sweep analysis: no entropy for {folder}: {error}", stacklevel=2)
            out[folder] = float("nan")
    return out


def analyse(records: list[dict], out_dir: Path, *, cache_dir="cache") -> tuple[dict[str, float], list[Path]]:
    """Run the sweep analyses on ``records``; write tables and plots to ``out_dir``; return (metrics, files)."""
    cells = cells_frame(records)
    if cells.empty:
        return {}, []
    entropy = candidate_entropies(cells["candidate"], cache_dir=cache_dir)
    cells["candidate_entropy"] = cells["candidate"].map(entropy)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    metrics: dict[str, float] = {}
    rows, panels = [], []
    for series, group in cells.groupby("series", sort=True):
        stats = correlate(group["value"], group["candidate_entropy"])
        rows.append({"series": series, **stats})
        metrics.update({f"{series}.{key}": float(stats[name]) for name, key in ENTROPY_KEYS.items()})
        panels.append((series, group["value"].to_numpy(), group["candidate_entropy"].to_numpy(), stats))
    entropy_table = pd.DataFrame(rows, columns=["series", "pearson_r", "pearson_p", "spearman_rho", "n"])

    wide = cells.pivot_table(index="pair", columns="series", values="value", aggfunc="last")
    wide.columns.name = None
    pair_entropy = cells.groupby("pair")["candidate_entropy"].first()
    matrix = wide.corr(method="pearson", min_periods=3) if wide.shape[1] else pd.DataFrame()

    files = []
    for name, table, index in (
        ("cells.csv", wide.assign(candidate_entropy=pair_entropy), True),
        ("entropy_correlation.csv", entropy_table, False),
        ("metric_correlation.csv", matrix, True),
    ):
        atomic_write_text(out_dir / name, table.to_csv(index=index))
        files.append(out_dir / name)
    files.append(
        plots.entropy_scatter(
            out_dir / "entropy_across_cells.png",
            panels,
            title="metric vs the candidate set's mean entropy, across cells",
            xlabel="candidate set mean entropy (bits)",
        )
    )
    if not matrix.empty:
        files.append(
            plots.heatmap(
                out_dir / "metric_correlation.png",
                matrix,
                title=f"Pearson correlation of metrics across {len(wide)} pairs",
            )
        )
    return metrics, files


def sweep_analysis(records: list[dict], sweep_dir: Path, *, cache_dir="cache") -> tuple[dict, list]:
    """:func:`analyse` the sweep into ``<sweep_dir>/sweep_analysis``: (metrics, [(file, artifact folder)])."""
    out_dir = Path(sweep_dir) / ANALYSIS_DIR
    return guarded("sweep analysis", out_dir, lambda: analyse(records, out_dir, cache_dir=cache_dir))


def guarded(label: str, out_dir: Path, produce) -> tuple[dict, list]:
    """Run ``produce() -> (metrics, files)`` for the sweep's parent run; files come back with ``out_dir``'s
    name as their artifact folder. A failure only warns: the cells are recorded already and must not be lost."""
    try:
        metrics, files = produce()
    except Exception as error:  # noqa: BLE001 - see the docstring
        warnings.warn(f"{label} failed: {error}".splitlines()[0], stacklevel=3)
        return {}, []
    if files:
        print(f"{label}: {out_dir}")
    return metrics, [(path, out_dir.name) for path in files]
