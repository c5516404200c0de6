"""Results tables: run records (``result.json``) → one tidy table to print or save."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from dsim.cell import RESULT_FILE

COLUMNS = ["extractor", "metric", "pair", "value", "std", "n_reference", "n_candidate", "mlflow_run_id"]


def collect(directory: str | Path) -> list[dict]:
    """Every ``result.json`` under ``directory`` (a sweep or run dir), in job order."""
    files = sorted(Path(directory).rglob(RESULT_FILE), key=lambda p: _job_order(p, Path(directory)))
    return [json.loads(file.read_text()) for file in files]


def _job_order(path: Path, root: Path):
    first = path.relative_to(root).parts[0]
    return (0, int(first), "") if first.isdigit() else (1, 0, str(path))


def to_frame(records: list[dict]) -> pd.DataFrame:
    """One row per cell: its primary value (named like the metric) and its ``<metric>_std`` if any.

    Further named values (e.g. ``precision``/``recall``) get a row each, ``metric`` holding the name.
    """
    rows = []
    for record in records:
        values = dict(record["values"])
        primary = record["metric"] if record["metric"] in values else None
        names = [primary] if primary else []
        names += [n for n in values if n != primary and not n.endswith("_std")]
        for name in names:
            rows.append({
                "extractor": record["extractor"],
                "metric": name,
                "pair": record["pair"],
                "value": values[name],
                "std": values.get(f"{name}_std"),
                "n_reference": record["n_reference"],
                "n_candidate": record["n_candidate"],
                "mlflow_run_id": record.get("mlflow_run_id"),
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def format_table(frame: pd.DataFrame) -> str:
    """A fixed-width text table: extractor, metric, pair, value (± std when known)."""
    if frame.empty:
        return "(no results)"
    shown = frame[["extractor", "metric", "pair"]].copy()
    shown["value"] = [
        f"{v:.6g}" + ("" if pd.isna(s) else f" ± {s:.2g}") for v, s in zip(frame["value"], frame["std"])
    ]
    shown["n"] = [f"{a}/{b}" for a, b in zip(frame["n_reference"], frame["n_candidate"])]
    return shown.to_string(index=False)
