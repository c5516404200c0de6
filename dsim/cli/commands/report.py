"""``dsim report``: the pivot of runs in an MLflow store — rows: pairs; columns: extractor × metric.

Reads every finished cell run of the store (all experiments) by default; ``--experiment``, ``--sweep`` and
``--filter`` narrow it down. Prints the table and writes it as CSV, HTML and PNG. Works with any tracking
URI: the local SQLite store by default (``$MLFLOW_TRACKING_URI`` when set), or ``--tracking-uri
http://server:5000``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dsim.analysis import report
from dsim.tracking.mlflow_store import DEFAULT_STORE_DIR, resolve_uri, search_runs


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="dsim report", description=__doc__.split(":", 1)[1].strip().split("\n\n")[0])
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///<store-dir>/mlflow.db)",
    )
    parser.add_argument("--store-dir", default=DEFAULT_STORE_DIR, help="local store folder (default: mlruns)")
    parser.add_argument(
        "--experiment",
        action="append",
        default=None,
        help="only this experiment (repeatable; default: all experiments)",
    )
    parser.add_argument(
        "--sweep", default=None, help="only the cells of one sweep: its parent run id, its directory, or 'latest'"
    )
    parser.add_argument("--filter", default="", help="MLflow search filter, e.g. \"tags.dsim.pair = 'a_vs_b'\"")
    parser.add_argument(
        "--values",
        choices=("primary", "all"),
        default="primary",
        help="the metric's own value only (default) or every value a run logged",
    )
    parser.add_argument("--out", default="report", help="folder for report.csv / .html / .png (default: report)")
    args = parser.parse_args(argv)

    uri = resolve_uri(args.tracking_uri, args.store_dir)
    parent = None
    if args.sweep:
        sweeps = search_runs(uri, experiments=args.experiment, filter_string=report.SWEEP_FILTER)
        parent = report.select_sweep(sweeps, args.sweep)
    runs = search_runs(uri, experiments=args.experiment, filter_string=args.filter)
    long = report.long_frame(runs, values=args.values, parent=parent)
    table = report.pivot(long)
    scope = (
        f"sweep {args.sweep}" if args.sweep else ", ".join(args.experiment) if args.experiment else "all experiments"
    )
    title = f"dsim report: {len(long)} value(s) from {long['run_id'].nunique()} run(s), {scope}"
    print(title)
    print(report.format_pivot(table))
    written = report.write(table, long, Path(args.out), title=title)
    print(f"written: {', '.join(str(p) for p in written)}")
