"""``dsim sync``: log the records that wait in the pending queue (the store was locked, full or away).

A cell queues the run it wants before it asks the store (``<store dir>/pending/`` and a copy,
``.dsim_pending_run.json``, beside its ``result.json``) and removes it once logged; when the MLflow store
kept failing for ``tracking.retry_s`` seconds — or the cell was killed while logging — the record stays
there. This command logs each one exactly once (a record already logged by another process is
recognised by its ``dsim.record_id``) and removes it. It reads the store folder's queue and the copies in
the job and sweep folders given, or, with none given, in the working folder's ``outputs/`` and
``multirun/`` (Hydra's default job folders: a copy is all there is when the store folder was full).
Every dsim run on the same store logs its queue on its way in.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dsim.errors import DsimError
from dsim.tracking.mlflow_store import DEFAULT_RETRY_S, DEFAULT_STORE_DIR
from dsim.tracking.queue import queued, record_id_of, sync

#: where ``dsim sync`` without folders looks for records kept beside their results (Hydra's default roots)
JOB_ROOTS = ("outputs", "multirun")


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="dsim sync", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument(
        "paths",
        nargs="*",
        help="job or sweep folders whose waiting records to log as well "
        "(their .dsim_pending_run.json copies; default: ./outputs and ./multirun)",
    )
    parser.add_argument(
        "--store-dir",
        default=DEFAULT_STORE_DIR,
        help="the store folder whose queue to log (default: mlruns; each record knows its tracking URI)",
    )
    parser.add_argument(
        "--retry-s", type=float, default=DEFAULT_RETRY_S, help="how long to retry a busy store (default: 60)"
    )
    args = parser.parse_args(argv)
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        raise DsimError(
            f"no such folder: {missing[0]} (give job or sweep folders, or none: then {' and '.join(JOB_ROOTS)} here)"
        )
    paths = tuple(args.paths) or tuple(p for p in JOB_ROOTS if Path(p).is_dir())
    waiting = len(set(map(record_id_of, queued(args.store_dir, paths))))
    if not waiting:
        print(f"nothing to sync: no pending records in {args.store_dir}" + (f" or {', '.join(paths)}" if paths else ""))
        return
    report = sync(args.store_dir, retry_s=args.retry_s, paths=paths)
    print(
        f"{len(report.logged)} of {waiting} pending record(s) logged"
        + (f", {report.busy} being logged by another process" if report.busy else "")
    )
    for line in report.failed:
        print(f"  not logged: {line}")
    if report.failed:
        raise DsimError(f"{len(report.failed)} record(s) still pending; run `dsim sync` again when the store is back")
