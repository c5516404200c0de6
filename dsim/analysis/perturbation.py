"""A perturbation sweep (``dsim -m perturb=blur perturb.strength=0,1,2,4 ...``): every metric against strength.

At the end of a multirun whose cells perturb their candidates (:mod:`dsim.data.perturb`) at two or more
strengths, the headline value of every cell goes into ``perturbation.csv`` (perturbation, strength,
extractor, pair, metric, value) and ``perturbation.png`` (one panel per metric, a line per extractor × pair),
logged on the sweep's parent run under ``perturbation/``. Each series also gets its Spearman rho against
strength as a parent-run metric, ``<extractor>.<metric>.<pair>.strength_spearman_rho`` (1: the value grows
with every step of strength).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dsim.analysis import plots
from dsim.analysis.correlation import correlate
from dsim.analysis.sweep import guarded
from dsim.records import CellRecord
from dsim.util.fileio import atomic_write_text

OUT_DIR = "perturbation"
COLUMNS = ["perturbation", "strength", "extractor", "pair", "metric", "value"]


def strength_frame(records: list[dict]) -> pd.DataFrame:
    """One row per headline value of every perturbed cell."""
    from dsim.results import headline_values

    rows = []
    for cell in map(CellRecord.from_json, records):
        name = (cell.config or {}).get("perturb.name", "none")
        if name in (None, "none"):
            continue
        for metric in headline_values(cell.values, cell.headline()):
            rows.append(
                {
                    "perturbation": name,
                    "strength": float(cell.config["perturb.strength"]),
                    "extractor": cell.extractor,
                    "pair": cell.pair,
                    "metric": metric,
                    "value": cell.values[metric],
                }
            )
    return (
        pd.DataFrame(rows, columns=COLUMNS)
        .sort_values(["perturbation", "extractor", "pair", "metric", "strength"], kind="stable")
        .reset_index(drop=True)
    )


def analyse(records: list[dict], out_dir: Path) -> tuple[dict, list[Path]]:
    frame = strength_frame(records)
    if frame.empty or frame["strength"].nunique() < 2:
        return {}, []
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "perturbation.csv", frame.to_csv(index=False))
    metrics = {}
    groups = frame.groupby(["perturbation", "extractor", "pair", "metric"])
    for (_perturbation, extractor, pair, metric), series in groups:
        if series["strength"].nunique() >= 3:
            rho = correlate(series["strength"], series["value"])["spearman_rho"]
            metrics[f"{extractor}.{metric}.{pair}.strength_spearman_rho"] = rho
    files = [out_dir / "perturbation.csv"]
    for name, group in frame.groupby("perturbation", sort=True):
        files.append(
            plots.metric_vs_strength(
                out_dir / f"perturbation_{name}.png"
                if frame["perturbation"].nunique() > 1
                else out_dir / "perturbation.png",
                group,
                title=f"every metric against {name} strength",
            )
        )
    return metrics, files


def perturbation_analysis(records: list[dict], sweep_dir: Path) -> tuple[dict, list]:
    """:func:`analyse` into ``<sweep_dir>/perturbation``: (metrics, [(file, artifact folder)])."""
    out_dir = Path(sweep_dir) / OUT_DIR
    return guarded("perturbation sweep", out_dir, lambda: analyse(records, out_dir))
