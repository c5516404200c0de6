"""``dsim lineage RUN_ID``: from a number in MLflow back to the exact data, weights and code behind it.

Prints run → resolved config → extractor identity and weights checksum → each dataset's fingerprint,
DVC md5 and git revision, then checks whether the workspace data still matches: which files changed,
appeared or vanished since the run. The check trusts the hash memo for files whose size, times and inode
are unchanged; ``--verify`` reads every byte again instead.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd

from dsim.data.images import dataset_fingerprint, scan_images
from dsim.errors import DsimError
from dsim.records import ARTIFACT_DIR, RESULT_FILE, CellRecord, Side
from dsim.tracking.mlflow_store import Tracker, resolve_uri

CONFIG_KEYS = ("extractor.", "metric.", "pair.", "device", "dataset.on_error")


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="dsim lineage", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("run_id", help="an MLflow run id (from the UI, result.json or `dsim report`)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI or mlruns/)")
    parser.add_argument("--experiment", default="dsim")
    parser.add_argument(
        "--verify", action="store_true", help="re-hash every byte of both datasets instead of trusting the hash memo"
    )
    args = parser.parse_args(argv)
    tracker = Tracker(resolve_uri(args.tracking_uri), experiment=args.experiment)
    report = lineage(tracker, args.run_id, verify=args.verify)
    print(format_lineage(report))
    if not report["workspace_matches"]:
        raise SystemExit(1)


def lineage(tracker: Tracker, run_id: str, *, verify: bool = False) -> dict:
    """The lineage of one cell run as a dict (see :func:`format_lineage`); ``verify`` re-hashes every byte."""
    run = tracker.get_run(run_id)
    with tempfile.TemporaryDirectory() as tmp:
        result_file = tracker.download_artifact(run_id, RESULT_FILE, tmp)
        if result_file is None:
            raise DsimError(f"run {run_id} has no {RESULT_FILE} artifact: is it a dsim cell run (not a sweep)?")
        record = CellRecord.from_json(json.loads(result_file.read_text()))
        sides = {
            role: _side(tracker, run_id, record.side(role), role, tmp, verify) for role in ("reference", "candidate")
        }
    config = {k: v for k, v in run.data.params.items() if k.startswith(CONFIG_KEYS)}
    return {
        "run_id": run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "values": record.values,
        "config": dict(sorted(config.items())),
        "extractor": record.extractor,
        "extractor_identity": record.extractor_identity,
        "weights_checksum": record.weights_checksum,
        "random_weights": record.random_weights,
        "git_commit": record.git_commit,
        "dsim_version": record.dsim_version,
        "datasets": sides,
        "workspace_matches": all(side["matches"] for side in sides.values()),
    }


def _side(tracker: Tracker, run_id: str, recorded: Side, side: str, tmp: str, verify: bool) -> dict:
    root = Path(recorded.path)
    info = {"name": recorded.name, "path": str(root), "fingerprint": recorded.fingerprint, **recorded.lineage}
    try:
        now = scan_images(root, rehash=verify, progress=verify).files
    except DsimError as error:
        return {**info, "matches": False, "status": f"missing: {error}"}
    current = dataset_fingerprint(now)
    if current == info["fingerprint"]:
        how = " (every byte re-hashed)" if verify else " (by the hash memo; --verify re-reads every byte)"
        return {**info, "matches": True, "status": "workspace data matches" + how}
    manifest = tracker.download_artifact(run_id, f"{ARTIFACT_DIR}/manifest_{side}.csv", tmp)
    status = f"CHANGED since the run (fingerprint now {current[:16]})"
    if manifest is not None:
        before = dict(pd.read_csv(manifest).itertuples(index=False, name=None))
        after = {ref.relpath: ref.sha256 for ref in now}
        changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
        added, removed = sorted(after.keys() - before.keys()), sorted(before.keys() - after.keys())
        status += "".join(
            f"; {label}: {', '.join(_few(files))}"
            for label, files in (("modified", changed), ("added", added), ("removed", removed))
            if files
        )
    return {**info, "matches": False, "status": status, "fingerprint_now": current}


def _few(files: list[str], limit: int = 5) -> list[str]:
    return files[:limit] + ([f"... {len(files) - limit} more"] if len(files) > limit else [])


def format_lineage(report: dict) -> str:
    values = ", ".join(f"{k}={v:.6g}" for k, v in report["values"].items())
    lines = [
        f"run        {report['run_id']}  {report['run_name']}  [{report['status']}]",
        f"values     {values}",
        "config     " + " ".join(f"{k}={v}" for k, v in report["config"].items()),
        f"extractor  {report['extractor']}  identity {report['extractor_identity'][:16]}  "
        f"weights {report['weights_checksum']}"
        + ("  (RANDOM WEIGHTS: not a real result)" if report["random_weights"] else ""),
        f"code       git {report['git_commit']}  dsim {report['dsim_version']}",
    ]
    for side, info in report["datasets"].items():
        dvc = (
            (
                f"DVC {Path(info['dvc_file']).name} md5 {info['dvc_md5']} ({info['path_in_tracked']}) "
                f"at git {str(info['git_revision'])[:12]}"
            )
            if info.get("dvc_file")
            else "not DVC-tracked"
        )
        lines += [
            f"{side:10s} {info['name']}  {info['path']}",
            f"           fingerprint {info['fingerprint'][:16]}  {dvc}",
            f"           {info['status']}",
        ]
    return "\n".join(lines)
