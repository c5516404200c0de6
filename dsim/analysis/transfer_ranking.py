"""Which distance predicts the score best: a sweep's extractor × distance series ranked by |Spearman ρ|.

A sweep over extractors and metrics with one score file (``analysis=transfer``) gives one ρ per series:

- with **per-image** scores, each cell's own ρ across its candidate's images (``transfer_spearman`` and
  its interval); the series is the extractor and the distance the cell used (``i_dist``, or the metric's
  per-image column with ``analysis.transfer.distance=metric``: ``emd.transport_cost``);
- with **per-dataset** scores, the ρ across the sweep's candidate datasets of each extractor's mean I_dist
  and each extractor × metric value (:func:`dsim.analysis.transfer.sweep_transfer`), and the
  leave-one-dataset-out error of a least-squares fit score ≈ a + b·distance: each dataset's score predicted
  by the line through the others (RMSE and MAE, in score units). That is the number to trust when a user
  wants to predict the score of a new set from its distance.

|ρ|'s interval is ρ's mapped through |·| (it starts at 0 when ρ's interval holds 0). Rows are ranked by
|ρ| (ties: the smaller leave-one-out error, then the narrower interval); ``transfer/ranking.csv`` and
``transfer/ranking.png`` go on the sweep's parent run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dsim.util.fileio import atomic_write_text

RANKING_FILE = "ranking.csv"
RANKING_FIGURE = "ranking.png"
MIN_LODO_DATASETS = 3  # a line through the others needs two points
COLUMNS = (
    "rank", "series", "extractor", "distance", "reference", "candidate", "scores", "n",
    "abs_spearman", "abs_spearman_ci_low", "abs_spearman_ci_high",
    "spearman", "spearman_ci_low", "spearman_ci_high", "spearman_p", "pearson", "slope", "lodo_rmse", "lodo_mae",
)  # fmt: skip


def absolute_interval(low: float, high: float) -> tuple[float, float]:
    """The interval of |ρ| from ρ's: [min |.|, max |.|], from 0 when ρ's interval holds 0."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return float("nan"), float("nan")
    top = max(abs(low), abs(high))
    return (0.0, top) if low <= 0 <= high else (min(abs(low), abs(high)), top)


def leave_one_out_errors(distance, score) -> tuple[float, float]:
    """RMSE and MAE of predicting each point's score by the least-squares line through the others."""
    x, y = np.asarray(distance, dtype=np.float64), np.asarray(score, dtype=np.float64)
    if len(x) < MIN_LODO_DATASETS:
        return float("nan"), float("nan")
    errors = np.empty(len(x))
    for i in range(len(x)):
        rest = np.arange(len(x)) != i
        if np.ptp(x[rest]) == 0:
            return float("nan"), float("nan")
        slope, intercept = np.polyfit(x[rest], y[rest], 1)
        errors[i] = intercept + slope * x[i] - y[i]
    return float(np.sqrt(np.mean(errors**2))), float(np.mean(np.abs(errors)))


def image_rows(records: list[dict]) -> list[dict]:
    """A row per cell scored per image: the cell's ρ across its candidate's images."""
    from dsim.analysis.transfer import PREFIX
    from dsim.metrics import lookup
    from dsim.records import CellRecord

    rows = []
    for raw, record in zip(records, map(CellRecord.from_json, records), strict=True):
        values = record.values
        if f"{PREFIX}spearman" not in values or f"{PREFIX}score" in values:
            continue
        distance = "i_dist"
        if (raw.get("config") or {}).get("analysis.transfer.distance") == "metric":
            distance = f"{record.metric}.{lookup(record.metric).per_image['candidate'][0]}"
        rows.append(
            {
                "series": f"{record.extractor}.{distance}",
                "extractor": record.extractor,
                "distance": distance,
                "reference": record.reference.name,
                "candidate": record.candidate.name,
                "scores": "image",
                **{k: values.get(f"{PREFIX}{k}", float("nan")) for k in _STATISTICS},
            }
        )
    return rows


_STATISTICS = ("n", "spearman", "spearman_ci_low", "spearman_ci_high", "spearman_p", "pearson", "slope")


def dataset_rows(points: pd.DataFrame, statistics: list[dict]) -> list[dict]:
    """A row per series of per-dataset scores, with its leave-one-dataset-out errors."""
    rows = []
    for stats in statistics:
        group = points[(points["series"] == stats["series"]) & (points["reference"] == stats["reference"])]
        rmse, mae = leave_one_out_errors(group["distance"], group["score"])
        rows.append(
            {
                "series": stats["series"],
                "extractor": group["extractor"].iloc[0],
                "distance": group["measure"].iloc[0],
                "reference": stats["reference"],
                "candidate": f"{len(group)} datasets",
                "scores": "dataset",
                **{k: stats.get(k, float("nan")) for k in _STATISTICS},
                "lodo_rmse": rmse,
                "lodo_mae": mae,
            }
        )
    return rows


def ranking_table(rows: list[dict]) -> pd.DataFrame:
    """The rows ranked by |ρ| (then the smaller leave-one-out error, then the narrower interval)."""
    table = pd.DataFrame(rows).reindex(columns=[c for c in COLUMNS if c != "rank"])
    if table.empty:
        return table
    table["abs_spearman"] = table["spearman"].abs()
    bounds = [absolute_interval(lo, hi) for lo, hi in zip(table["spearman_ci_low"], table["spearman_ci_high"])]
    table["abs_spearman_ci_low"], table["abs_spearman_ci_high"] = zip(*bounds, strict=True)
    width = table["abs_spearman_ci_high"] - table["abs_spearman_ci_low"]
    table = table.assign(_width=width).sort_values(
        ["abs_spearman", "lodo_rmse", "_width"], ascending=[False, True, True], na_position="last", kind="stable"
    )
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.drop(columns="_width").reset_index(drop=True)


def write_ranking(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``ranking.csv`` and ``ranking.png`` (|ρ| with its interval per series; the leave-one-out RMSE beside)."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / RANKING_FILE, table.to_csv(index=False))
    return [out_dir / RANKING_FILE, ranking_png(out_dir / RANKING_FIGURE, table)]


def ranking_png(path: Path, table: pd.DataFrame) -> Path:
    from dsim.analysis.plots import _figure, _save

    lodo = table["lodo_rmse"].notna().any()
    fig = _figure(9 if lodo else 6.5, 1.2 + 0.35 * len(table))
    axes = fig.subplots(1, 2, sharey=True, width_ratios=(3, 2)) if lodo else [fig.add_subplot()]
    labels = [
        f"{r.extractor} × {r.distance}" + (f" ({r.candidate})" if r.scores == "image" else "")
        for r in table.itertuples()
    ]
    y = np.arange(len(table))[::-1]
    value = table["abs_spearman"].to_numpy(dtype=float)
    low = np.nan_to_num(value - table["abs_spearman_ci_low"].to_numpy(dtype=float))
    high = np.nan_to_num(table["abs_spearman_ci_high"].to_numpy(dtype=float) - value)
    axes[0].barh(y, value, xerr=[low, high], color="tab:blue", alpha=0.8, capsize=3)
    axes[0].set(yticks=y, yticklabels=labels, xlim=(0, 1), xlabel="|Spearman ρ| of score vs distance (95 % interval)")
    if lodo:
        axes[1].barh(y, table["lodo_rmse"].to_numpy(dtype=float), color="tab:orange", alpha=0.8)
        axes[1].set(xlabel="leave-one-dataset-out RMSE of the linear fit (score units)")
    fig.suptitle("which distance predicts the score (best first)")
    return _save(fig, path)
