"""Results tables: run records (``result.json``) → one tidy table to print or save."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pandas as pd

from dsim.records import CellRecord, read_records, write_json

COLUMNS = [
    "extractor",
    "metric",
    "pair",
    "value",
    "std",
    "ci_low",
    "ci_high",
    "floor",
    "at_floor_n",
    "over_floor",
    "n_reference",
    "n_candidate",
    "mlflow_run_id",
]


def collect(directory: str | Path) -> list[dict]:
    """Every ``result.json`` under ``directory`` (a sweep or run dir), in job order."""
    return read_records(directory)


#: records without value roles (dsim 0.1): value-name endings that qualify another value
LEGACY_DETAIL_SUFFIXES = ("_std", "_median", "_best", "_worst", "_ci_low", "_ci_high", "_reference")
LEGACY_DETAIL_NAMES = ("n_pairs", "match_distance_mean")


def headline_values(values: dict, headline: list[str] | None = None) -> list[str]:
    """The names worth a table row: the metric's declared headline values (a record's ``value_roles``,
    a run's ``dsim.headline`` tag), or — for records written before roles existed — every name that is
    not a qualifier (std, interval, median...) or an entropy statistic."""
    if headline is not None:
        return [name for name in headline if name in values]
    return [
        name
        for name in values
        if "." not in name
        and not name.startswith("entropy_")
        and name not in LEGACY_DETAIL_NAMES
        and not name.endswith(LEGACY_DETAIL_SUFFIXES)
    ]


def variant_keys(configs: list[dict], cells: list[tuple]) -> list[str]:
    """Config keys whose values differ between cells of the same (extractor, metric, pair).

    ``configs`` are flat ``{key: value}`` configs, ``cells`` their (extractor, metric, pair). Such keys
    (``pairing.method`` in ``pairing=random,nearest``) keep two otherwise identical-looking rows apart.
    """
    groups: dict[tuple, list[dict]] = {}
    for config, cell in zip(configs, cells):
        groups.setdefault(cell, []).append(config)
    varying = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        for key in set().union(*members):
            if len({repr(m.get(key)) for m in members}) > 1:
                varying.add(key)
    return sorted(varying)


def variant_label(config: dict, keys: list[str]) -> str:
    """``key=value`` of the variant keys, joined by spaces (empty when there are none)."""
    return " ".join(f"{key}={config.get(key)}" for key in keys)


def to_frame(records: list[dict]) -> pd.DataFrame:
    """One row per headline value of each cell (``fid``; ``precision``, ``recall``, ...), with its
    ``<name>_std``, ``<name>_ci_low``/``_ci_high`` and noise floor (``<name>_floor``, ``<name>_at_floor_n``,
    ``<name>_over_floor``) when the cell has them.

    Cells that differ in config keys besides extractor, metric and pair get those keys as extra columns
    (before ``value``); ``random_weights`` and the skipped images per side are kept for the printed table.
    """
    cells = [CellRecord.from_json(record) for record in records]
    configs = [cell.config or {} for cell in cells]
    keys = variant_keys(configs, [(c.extractor, c.metric, c.pair) for c in cells])
    rows = []
    for cell, config in zip(cells, configs):
        values = cell.values
        for name in headline_values(values, cell.headline()):
            rows.append(
                {
                    "extractor": cell.extractor,
                    "metric": name,
                    "pair": cell.pair,
                    **{key: config.get(key) for key in keys},
                    "value": values[name],
                    "std": values.get(f"{name}_std"),
                    "ci_low": values.get(f"{name}_ci_low"),
                    "ci_high": values.get(f"{name}_ci_high"),
                    "floor": values.get(f"{name}_floor"),
                    "at_floor_n": values.get(f"{name}_at_floor_n"),
                    "over_floor": values.get(f"{name}_over_floor"),
                    "n_reference": cell.reference.n,
                    "n_candidate": cell.candidate.n,
                    "skipped_reference": len(cell.reference.skipped),
                    "skipped_candidate": len(cell.candidate.skipped),
                    "random_weights": bool(cell.random_weights),
                    "mlflow_run_id": cell.mlflow_run_id,
                }
            )
    columns = (
        COLUMNS[:3] + keys + COLUMNS[3:-1] + ["skipped_reference", "skipped_candidate", "random_weights", COLUMNS[-1]]
    )
    return pd.DataFrame(rows, columns=columns)


def format_table(frame: pd.DataFrame) -> str:
    """A fixed-width text table: extractor, metric, pair (and any variant keys), value (± std when known),
    the noise floor, the value at the floor's sizes and their ratio (when a cell has a floor),
    n = reference/candidate images, with skipped images per side and a RANDOM WEIGHTS mark when there are."""
    if frame.empty:
        return "(no results)"
    variants = [
        c
        for c in frame.columns
        if c not in COLUMNS and c not in ("skipped_reference", "skipped_candidate", "random_weights")
    ]
    shown = frame[["extractor", "metric", "pair", *variants]].copy()
    shown["value"] = [_shown(row) for row in frame.itertuples()]
    if "floor" in frame and frame["floor"].notna().any():  # see dsim.metrics.floor
        shown["floor"] = [_number(f, ".4g") for f in frame["floor"]]
        shown["value@floor n"] = [_number(v, ".4g") for v in frame["at_floor_n"]]
        shown["value/floor"] = [_number(r, ".3g") for r in frame["over_floor"]]
    shown["n"] = [f"{a}/{b}" for a, b in zip(frame["n_reference"], frame["n_candidate"])]
    skipped = frame.get("skipped_reference", 0) + frame.get("skipped_candidate", 0)
    if "skipped_reference" in frame and (skipped > 0).any():
        shown["skipped"] = [f"{a}/{b}" for a, b in zip(frame["skipped_reference"], frame["skipped_candidate"])]
    if "random_weights" in frame and frame["random_weights"].any():
        shown["note"] = ["RANDOM WEIGHTS: not a result" if random else "" for random in frame["random_weights"]]
    return shown.to_string(index=False)


#: how far past the range its metric declares a value may lie and still be float error (FID of a set with
#: itself: -2.8e-06); such a value is shown at the bound, the record keeps the raw number
ROUNDING_SLACK = 1e-3


@functools.cache
def _declared_ranges() -> dict[str, tuple]:
    from dsim.metrics import METRICS

    return {key: bounds for spec in METRICS.values() for key, bounds in spec.ranges.items()}


def shown_value(name: str, value: float) -> float:
    """``value`` of value key ``name`` as a table shows it: rounding noise past its metric's declared range
    (a distance that is >= 0 by definition) shown at the bound; anything further off is shown as it is.

    >>> shown_value("fid", -2.77e-06), shown_value("fid", -0.5), shown_value("kid_poly", -0.007)
    (0.0, -0.5, -0.007)
    """
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return value
    low, high = _declared_ranges().get(name, (None, None))
    if low is not None and low - ROUNDING_SLACK < value < low:
        return float(low)
    if high is not None and high < value < high + ROUNDING_SLACK:
        return float(high)
    return value


def _number(value, spec: str) -> str:
    return "" if value is None or pd.isna(value) else format(value, spec)


def _shown(row) -> str:
    text = "nan" if pd.isna(row.value) else f"{shown_value(row.metric, row.value):.6g}"
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
    write_json(path, content, sort_keys=True)


def caveats_summary(records: list[dict]) -> str | None:
    """One line for the metric caveats of a sweep's (or a cell's) records (their ``warnings``, see
    :mod:`dsim.cell.caveats`): how many cells had each kind, one example each; ``None`` when there were none."""
    cells: dict[str, int] = {}
    example: dict[str, str] = {}
    for record in records:
        for category in {c["category"] for c in record.get("warnings") or []}:
            cells[category] = cells.get(category, 0) + 1
            example.setdefault(category, next(c["message"] for c in record["warnings"] if c["category"] == category))
    if not cells:
        return None
    kinds = "; ".join(f"{name} in {n} cell(s), e.g. {example[name]!r}" for name, n in cells.items())
    return f'note: {kinds}. Recorded in each result.json\'s "warnings"; verbose=true prints them'
