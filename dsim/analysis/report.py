"""The cross-run report: runs read back from an MLflow store → a pivot (rows: pairs; columns: extractor × metric).

Only finished cell runs count (not sweep parents); when a cell (pair, extractor, metric and any other
config key that differs between runs) was run more than once, the newest run wins. A sweep's report holds
every cell of the sweep: its children, including those that stand for a reused earlier run (tag
``dsim.reused_from``); a report across sweeps reads the computed runs only, so no value counts twice. A
column whose runs used random weights is labelled ``<extractor> [RANDOM WEIGHTS]`` so a plumbing run can
never pass for a result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dsim.analysis import plots
from dsim.errors import DsimError
from dsim.tracking.queue import REUSED_FROM_TAG
from dsim.util.fileio import atomic_write_text

RANDOM_LABEL = " [RANDOM WEIGHTS]"
LONG_COLUMNS = ["pair", "extractor", "metric", "value", "run_id", "experiment", "sweep", "start_time"]


SWEEP_FILTER = "tags.`dsim.kind` = 'sweep'"


def select_sweep(parents: list[dict], sweep: str) -> str:
    """The parent run id of ``sweep`` among the sweeps' ``parents`` (newest first): a parent run id, a sweep
    directory, or ``latest``."""
    parents = [r for r in parents if r["tags"].get("dsim.kind") == "sweep"]
    if not parents:
        raise DsimError("no sweep (multirun) in the selected experiments")
    if sweep == "latest":
        return parents[0]["run_id"]
    for run in parents:
        if run["run_id"] == sweep:
            return sweep
    wanted = str(Path(sweep).expanduser().resolve())
    for run in parents:
        if run["tags"].get("dsim.sweep_dir") == wanted:
            return run["run_id"]
    raise DsimError(
        f"no sweep {sweep!r} (give a sweep's parent run id, its directory, or 'latest'; {len(parents)} sweep(s) found)"
    )


def long_frame(runs: list[dict], *, values: str = "primary", parent: str | None = None) -> pd.DataFrame:
    """One row per (run, value): the cell's headline values (``values="primary"``: ``fid``; ``precision``,
    ``recall``, ``density``, ``coverage`` for prdc) or every value (``"all"``); only the children of the
    sweep run ``parent`` when given (with the children that stand for reused runs; without ``parent``, those
    are left out: their earlier run counts).

    Runs of the same pair, extractor and metric that differ in another config key (``pairing.method``)
    stay apart: the differing keys are added to the metric's label, ``psnr [pairing.method=random]``.
    """
    from dsim.cell.key import is_operational
    from dsim.cell.record import HEADLINE_TAG
    from dsim.results import headline_values, variant_keys, variant_label

    if values not in ("primary", "all"):
        raise DsimError(f"values must be 'primary' or 'all', got {values!r}")
    cells = []
    for run in runs:
        tags = run["tags"]
        metric = tags.get("dsim.metric")
        if metric is None or tags.get("dsim.kind") == "sweep" or run["status"] != "FINISHED":
            continue
        if (tags.get("mlflow.parentRunId") != parent) if parent else REUSED_FROM_TAG in tags:
            continue
        extractor = tags.get("dsim.extractor", "none")
        if tags.get("dsim.extractor.random_weights") == "true":
            extractor += RANDOM_LABEL
        config = {k: v for k, v in run["params"].items() if not is_operational(k)}
        cells.append((run, extractor, metric, config))
    keys = variant_keys([c[3] for c in cells], [(c[1], c[2], c[0]["tags"].get("dsim.pair", "?")) for c in cells])
    rows = []
    for run, extractor, _metric, config in cells:
        variant = variant_label(config, keys)
        headline = run["tags"].get(HEADLINE_TAG)
        names = (
            headline_values(run["metrics"], headline.split(",") if headline is not None else None)
            if values == "primary"
            else sorted(run["metrics"])
        )
        for name in names:
            rows.append(
                {
                    "pair": run["tags"].get("dsim.pair", "?"),
                    "extractor": extractor,
                    "metric": f"{name} [{variant}]" if variant else name,
                    "value": run["metrics"][name],
                    "run_id": run["run_id"],
                    "experiment": run["experiment"],
                    "sweep": run["tags"].get("mlflow.parentRunId"),
                    "start_time": run["start_time"],
                }
            )
    frame = pd.DataFrame(rows, columns=LONG_COLUMNS)
    frame = frame.sort_values("start_time", ascending=False, kind="stable")
    return frame.drop_duplicates(["pair", "extractor", "metric"], keep="first").reset_index(drop=True)


def pivot(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows: pairs; columns: (extractor, metric); cells: values."""
    if frame.empty:
        return pd.DataFrame()
    table = frame.pivot_table(index="pair", columns=["extractor", "metric"], values="value", aggfunc="first")
    return table.sort_index(axis=0).sort_index(axis=1)


def flat_columns(table: pd.DataFrame) -> pd.DataFrame:
    """``(extractor, metric)`` columns as ``extractor/metric`` (for CSV)."""
    flat = table.copy()
    flat.columns = [f"{e}/{m}" for e, m in table.columns]
    return flat


def format_pivot(table: pd.DataFrame) -> str:
    if table.empty:
        return "(no runs)"
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.float_format", "{:.6g}".format):
        return table.to_string()


def write(table: pd.DataFrame, long: pd.DataFrame, out_dir: Path, *, title: str) -> list[Path]:
    """``report.csv`` (flat columns), ``report_runs.csv`` (one row per value, with run ids), ``report.html``
    and ``report.png`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    atomic_write_text(out_dir / "report.csv", flat_columns(table).to_csv() if not table.empty else "pair\n")
    atomic_write_text(out_dir / "report_runs.csv", long.to_csv(index=False))
    html = (
        table.to_html(float_format=lambda v: f"{v:.6g}", na_rep="", border=0) if not table.empty else "<p>no runs</p>"
    )
    atomic_write_text(
        out_dir / "report.html",
        "<!doctype html><meta charset='utf-8'>"
        f"<title>{title}</title><style>body{{font-family:sans-serif}} td,th{{padding:2px 8px;"
        f"text-align:right}}</style><h1>{title}</h1>{html}\n",
    )
    written += [out_dir / "report.csv", out_dir / "report_runs.csv", out_dir / "report.html"]
    if not table.empty and np.isfinite(table.to_numpy(dtype=np.float64)).any():
        written.append(plots.pivot_table(out_dir / "report.png", table, title=title))
    return written
