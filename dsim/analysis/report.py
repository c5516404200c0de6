"""The cross-run report: runs read back from an MLflow store → a pivot (rows: pairs; columns: extractor × metric).

Only finished cell runs count (not sweep parents); when a cell (pair, extractor, metric and any other
config key that differs between runs) was run more than once, the newest run wins. A sweep's report holds
every cell of the sweep: its children, including those that stand for a reused earlier run (tag
``dsim.reused_from``); a report across sweeps reads the computed runs only, so no value counts twice. A
column whose runs used random weights is labelled ``<extractor> [RANDOM WEIGHTS]`` so a plumbing run can
never pass for a result.

A row is a pair's data: runs whose reference and candidate fingerprints agree share it, under the name of
the first of them (:func:`row_names`). A column's label names only the config keys that vary within it
(:func:`column_variants`). ``report.png`` colours every column from its best to its worst value by the
direction its metric declares, under one colour bar (:func:`dsim.analysis.plots.pivot_figure`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
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
#: config keys that only name a pair's data; its fingerprints say what the data is (see :func:`row_names`)
PAIR_KEYS = ("pair.name", "pair.reference", "pair.candidate")


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


@dataclass(frozen=True)
class _Cell:
    """A finished cell run of the selection: the run, its column's extractor and metric, its compared config."""

    run: dict
    extractor: str
    metric: str
    config: dict


def long_frame(runs: list[dict], *, values: str = "primary", parent: str | None = None) -> pd.DataFrame:
    """One row per (run, value): the cell's headline values (``values="primary"``: ``fid``; ``precision``,
    ``recall``, ``density``, ``coverage`` for prdc) or every value (``"all"``); only the children of the
    sweep run ``parent`` when given (with the children that stand for reused runs; without ``parent``, those
    are left out: their earlier run counts).

    A run's ``pair`` is its data's row (:func:`row_names`): runs of the same reference and candidate
    fingerprints share one, whatever their pair was called. Runs of the same row, extractor and metric that
    differ in another config key (``pairing.method``) stay apart: the keys that differ within that column are
    added to its label, ``psnr [pairing.method=random]`` (:func:`column_variants`).
    """
    from dsim.cell.record import HEADLINE_TAG
    from dsim.results import headline_values

    if values not in ("primary", "all"):
        raise DsimError(f"values must be 'primary' or 'all', got {values!r}")
    cells = _finished_cells(runs, parent)
    rows_of = row_names([cell.run for cell in cells])
    rows = []
    for cell, variant in zip(cells, column_variants(cells, rows_of)):
        run = cell.run
        headline = run["tags"].get(HEADLINE_TAG)
        names = (
            with_floors(headline_values(run["metrics"], headline.split(",") if headline is not None else None), run)
            if values == "primary"
            else sorted(run["metrics"])
        )
        for name in names:
            rows.append(
                {
                    "pair": rows_of[run["run_id"]],
                    "extractor": cell.extractor,
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


def with_floors(names: list[str], run: dict) -> list[str]:
    """Headline value names, each followed by its noise floor, its value at the floor's sizes and their ratio
    when the run logged them (``metric.floor=true``)."""
    from dsim.metrics.floor import floor_keys

    out = []
    for name in names:
        floor, _, _, at, ratio = floor_keys(name)
        out += [name, *(key for key in (floor, at, ratio) if key in run["metrics"])]
    return out


def _finished_cells(runs: list[dict], parent: str | None) -> list[_Cell]:
    """The finished cell runs of the selection (see :func:`long_frame`), with their number-determining config
    less the keys that only name the data (:data:`PAIR_KEYS`: the row stands for them)."""
    from dsim.cell.key import is_operational

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
        config = {k: v for k, v in run["params"].items() if not is_operational(k) and k not in PAIR_KEYS}
        cells.append(_Cell(run, extractor, metric, config))
    return cells


def _data_of(run: dict) -> tuple[str, str] | None:
    """A run's (reference, candidate) fingerprints, or ``None`` when it has not both."""
    tags = run["tags"]
    data = (tags.get("dsim.reference.fingerprint") or "", tags.get("dsim.candidate.fingerprint") or "")
    return data if all(data) else None


def _reads_stats_file(run: dict) -> bool:
    """Whether a side of the run was given as a statistics file (its pair name then holds the file's stem)."""
    from dsim.embeddings.stats_files import SUFFIX

    return any(str(run["params"].get(f"pair.{side}", "")).endswith(SUFFIX) for side in ("reference", "candidate"))


def row_names(runs: list[dict]) -> dict[str, str]:
    """Each run's report row (run id → name): the pair name (its catalogue or folder names, or ``pair.name``)
    of the first run with the same reference and candidate fingerprints — first among those whose sides are
    datasets, not statistics files (a file's stem is no dataset's name), then by start time and run id.

    A statistics file records the fingerprint of the folder it was made from, so ``ref_vs_X`` from
    ``ref.npz`` shares the row of ``photos_vs_X``. Different data under one name (a ``pair.name`` given
    twice) get their fingerprints' first characters added, ``X [0a1b2c3d/4e5f6a7b]``, so no value hides
    another. A run without both fingerprint tags keeps its pair name.
    """

    def naming_order(run: dict) -> tuple:
        return _reads_stats_file(run), run.get("start_time") or 0, run["run_id"]

    names: dict[tuple[str, str], str] = {}
    for run in sorted(runs, key=naming_order):
        data = _data_of(run)
        if data is not None:
            names.setdefault(data, run["tags"].get("dsim.pair", "?"))
    taken: dict[str, int] = {}
    for name in names.values():
        taken[name] = taken.get(name, 0) + 1
    for data, name in names.items():  # one name, different data (pair.name reused): the fingerprints tell them apart
        if taken[name] > 1:
            names[data] = f"{name} [{data[0][:8]}/{data[1][:8]}]"
    return {run["run_id"]: names.get(_data_of(run) or ("", ""), run["tags"].get("dsim.pair", "?")) for run in runs}


def column_variants(cells: list[_Cell], rows_of: dict[str, str]) -> list[str]:
    """Each cell's variant label (``key=value ...``, or empty): the config keys whose values differ between
    cells of the same column (extractor, metric) and row. Decided per column: a key that varies in another
    column only, or nowhere (a default every run has), is not in this column's label."""
    from dsim.results import variant_keys, variant_label

    columns: dict[tuple[str, str], list[int]] = {}
    for i, cell in enumerate(cells):
        columns.setdefault((cell.extractor, cell.metric), []).append(i)
    labels = [""] * len(cells)
    for members in columns.values():
        configs = [cells[i].config for i in members]
        keys = variant_keys(configs, [(rows_of[cells[i].run["run_id"]],) for i in members])
        for i in members:
            labels[i] = variant_label(cells[i].config, keys)
    return labels


@functools.cache
def _declared_directions() -> dict[str, bool | None]:
    """Headline value key → whether higher is better, as its metric declares (None where two metrics disagree)."""
    from dsim.metrics import METRICS

    found: dict[str, set[bool]] = {}
    for spec in METRICS.values():
        for key in spec.headline():
            found.setdefault(key, set()).add(bool(spec.higher_is_better))
    return {key: next(iter(kinds)) if len(kinds) == 1 else None for key, kinds in found.items()}


#: a value at its noise floor's sizes and its ratio to the floor (``fid_over_floor``): better as the value is
READ_AS_VALUE = ("_over_floor", "_at_floor_n")


def higher_is_better(label: str) -> bool | None:
    """Whether higher is better for a report column's value (``fid``, ``psnr [pairing.method=random]``): the
    direction declared by the metric whose headline value it is; ``None`` (unknown) for any other value
    (a spread, a count, an entropy bias...)."""
    name = label.split(" [", 1)[0]
    for suffix in READ_AS_VALUE:  # the value at the floor's sizes, and its ratio to the floor, read as the value
        name = name.removesuffix(suffix)
    return _declared_directions().get(name)


def column_directions(table: pd.DataFrame) -> dict:
    """``{(extractor, metric label): higher is better (True, False or None)}`` of a :func:`pivot`'s columns."""
    return {column: higher_is_better(column[-1]) for column in table.columns}


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
        written.append(
            plots.pivot_table(out_dir / "report.png", table, title=title, directions=column_directions(table))
        )
    return written
