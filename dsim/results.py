"""Results tables: run records (``result.json``) → one tidy table to print or save."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from dsim.cache import atomic_write_text
from dsim.cell import RESULT_FILE
from dsim.cell.run import json_safe

COLUMNS = ["extractor", "metric", "pair", "value", "std", "ci_low", "ci_high", "n_reference", "n_candidate",
           "mlflow_run_id"]


def collect(directory: str | Path) -> list[dict]:
    """Every ``result.json`` under ``directory`` (a sweep or run dir), in job order."""
    files = sorted(Path(directory).rglob(RESULT_FILE), key=lambda p: _job_order(p, Path(directory)))
    return [json.loads(file.read_text()) for file in files]


def _job_order(path: Path, root: Path):
    first = path.relative_to(root).parts[0]
    return (0, int(first), "") if first.isdigit() else (1, 0, str(path))


#: value-name endings that qualify another value rather than being a headline number of their own
DETAIL_SUFFIXES = ("_std", "_median", "_best", "_worst", "_ci_low", "_ci_high", "_reference")
DETAIL_NAMES = ("n_pairs", "match_distance_mean")


def headline_values(values: dict) -> list[str]:
    """The names worth a table row: not a qualifier (std, interval, median...), not an entropy statistic."""
    return [name for name in values
            if "." not in name and not name.startswith("entropy_") and name not in DETAIL_NAMES
            and not name.endswith(DETAIL_SUFFIXES)]


def to_frame(records: list[dict]) -> pd.DataFrame:
    """One row per headline value of each cell (``fid``; ``precision``, ``recall``, ...), with its
    ``<name>_std`` and ``<name>_ci_low``/``_ci_high`` when the cell has them."""
    rows = []
    for record in records:
        values = record["values"]
        for name in headline_values(values):
            rows.append({
                "extractor": record["extractor"],
                "metric": name,
                "pair": record["pair"],
                "value": values[name],
                "std": values.get(f"{name}_std"),
                "ci_low": values.get(f"{name}_ci_low"),
                "ci_high": values.get(f"{name}_ci_high"),
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
    shown["value"] = [_shown(row) for row in frame.itertuples()]
    shown["n"] = [f"{a}/{b}" for a, b in zip(frame["n_reference"], frame["n_candidate"])]
    return shown.to_string(index=False)


def _shown(row) -> str:
    text = "nan" if pd.isna(row.value) else f"{row.value:.6g}"
    if not pd.isna(row.std):
        text += f" ± {row.std:.2g}"
    if not pd.isna(row.ci_low):
        text += f" [{row.ci_low:.4g}, {row.ci_high:.4g}]"
    return text


def write_results_file(path: Path, records: list[dict]) -> None:
    """A sweep's values as nested ``{pair: {extractor: {metric: value}}}`` JSON (DVC reads it as metrics)."""
    nested: dict = {}
    for record in records:
        nested.setdefault(record["pair"], {}).setdefault(record["extractor"], {}).update(record["values"])
    _write_json(path, nested)


def write_values_file(path: Path, record: dict) -> None:
    """One cell's values as flat ``{name: value}`` JSON: the same columns for every variant in ``dvc exp show``."""
    _write_json(path, record["values"])


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(json_safe(content), indent=2, sort_keys=True, allow_nan=False) + "\n")
