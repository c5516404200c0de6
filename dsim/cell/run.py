"""Run one cell from a resolved config and record it: ``result.json`` in the job dir first, then one MLflow run.

Order matters for reliability: the config is checked and both datasets are found before any work; a
cell whose key (:mod:`dsim.cell.key`) already has a finished run in the store is reused, not recomputed;
the record and its tables are written into the job folder before the store is touched; the MLflow run
is then created through :func:`dsim.runlog.submit`, which keeps the record for ``dsim sync`` when the
store is locked, full or unreachable.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from dsim import __version__, configs, metrics
from dsim.analysis import visual, within_run
from dsim.cell import distribution, paired
from dsim.cell.context import pair_name, resolve_dataset
from dsim.cell.key import CELL_KEY_TAG, cell_key, key_config
from dsim.cell.record import build_record, dataset_input, flatten, run_tags, write_tables
from dsim.errors import DsimError
from dsim.images import dataset_fingerprint, resolve_dataset_dir, scan_images
from dsim.record import ARTIFACT_DIR, RESULT_FILE, read_json, write_json
from dsim.runlog import RunPlan, open_store, queued, submit
from dsim.tracking import DEFAULT_RETRY_S, StoreUnavailable, resolve_uri

#: metric kind → runner module with ``run(cfg, reference, candidate) -> CellOutput``
RUNNERS = {"distribution": distribution, "paired": paired}


def run_cell(cfg: dict, job_dir: Path, *, parent_run_id: str | None = None, sweep_dir: str | Path | None = None,
             choices: dict | None = None) -> dict:
    """Run one cell from a resolved config (``dict``); return the record written to ``result.json``.

    ``parent_run_id`` (or ``sweep_dir``, whose parent run may not exist yet) makes the run a sweep's
    child; ``choices`` are Hydra's group choices, for checking the config against its files.
    """
    configs.check(cfg, choices)
    metric_name = cfg["metric"]["name"]
    spec = metrics.METRICS.get(metric_name)
    if spec is None:
        raise DsimError(f"unknown metric {metric_name!r} (choose from: {', '.join(metrics.available())})")
    reference = resolve_dataset(cfg["pair"]["reference"], cfg["dataset"])
    candidate = resolve_dataset(cfg["pair"]["candidate"], cfg["dataset"])
    for ref in (reference, candidate):
        resolve_dataset_dir(ref.path)  # both folders exist before any work starts
    job_dir = Path(job_dir)
    key = _key(cfg, spec, reference, candidate)
    uri = resolve_uri(cfg["tracking"]["uri"], cfg["tracking"]["store_dir"])
    retry_s = float(cfg["tracking"].get("retry_s", DEFAULT_RETRY_S))
    tracker = None
    if not cfg.get("force"):
        tracker, reused = _reusable(cfg, key, uri, retry_s)
        if reused is not None:
            reused["reused"] = True
            write_json(job_dir / RESULT_FILE, reused)
            return reused

    output = RUNNERS[spec.kind].run(cfg, reference, candidate)
    within_run.augment(cfg, output, job_dir / ARTIFACT_DIR)  # entropy bias of per-item values, plots
    visual.augment(cfg, output, job_dir / ARTIFACT_DIR)  # analysis=umap/distance: UMAP map, missed features, I_dist views

    record = build_record(cfg, output, pair_name(cfg["pair"], reference, candidate))
    record.update(cell_key=key, config=flatten(key_config(cfg, device=cfg["device"])), mlflow_run_id=None,
                  tracking="pending", reused=False)
    artifacts = write_tables(output, job_dir / ARTIFACT_DIR)
    write_json(job_dir / RESULT_FILE, record)  # last: a result.json means the cell's files are all there
    plan = RunPlan(name=f"{record['extractor']} {metric_name} {record['pair']}", uri=uri,
                   experiment=cfg["tracking"]["experiment"], tags={**run_tags(record), CELL_KEY_TAG: key},
                   params=flatten(cfg), metrics=output.values,
                   datasets=[dataset_input(record, side) for side in ("reference", "candidate")],
                   artifacts=[(str(job_dir / RESULT_FILE), None)]
                   + [(str(path), ARTIFACT_DIR) for path in artifacts + output.files],
                   parent_run_id=parent_run_id, sweep_dir=str(sweep_dir) if sweep_dir else None,
                   result_file=str(job_dir / RESULT_FILE))
    record["mlflow_run_id"] = submit(plan, store_dir=cfg["tracking"]["store_dir"], retry_s=retry_s, tracker=tracker)
    record["tracking"] = "logged" if record["mlflow_run_id"] else "pending"
    return record


def _key(cfg: dict, spec, reference, candidate) -> str:
    """The cell key (lists both datasets through the hash memo; resolves the extractor's weights)."""
    from dsim.embedding import resolve_device

    fingerprints = [dataset_fingerprint(scan_images(ref.path, on_error=cfg["dataset"]["on_error"]).files)
                    for ref in (reference, candidate)]
    identity = "none"
    if spec.kind == "distribution":
        layer = "logits" if spec.input == "logits" else None
        identity = distribution.build_extractor(cfg["extractor"], layer=layer).identity
    return cell_key(cfg, device=resolve_device(cfg["device"]).type, reference_fingerprint=fingerprints[0],
                    candidate_fingerprint=fingerprints[1], extractor_identity=identity, version=__version__)


def _reusable(cfg: dict, key: str, uri: str, retry_s: float):
    """``(tracker, record)``: the record of a finished run with this cell key (or of one still pending)."""
    for path in queued(cfg["tracking"]["store_dir"]):  # computed before, not logged yet
        try:
            plan = RunPlan.from_json(path.read_text())
            if plan.tags.get(CELL_KEY_TAG) == key and plan.result_file and Path(plan.result_file).exists():
                return None, read_json(Path(plan.result_file))
        except (OSError, ValueError, TypeError):
            continue
    try:
        tracker = open_store(uri, cfg["tracking"]["experiment"], store_dir=cfg["tracking"]["store_dir"],
                             retry_s=retry_s)
        runs = tracker.runs_tagged(CELL_KEY_TAG, key, status="FINISHED")
    except StoreUnavailable as error:
        print(f"dsim: warning: cannot look for an earlier run of this cell ({error}); computing it", file=sys.stderr)
        return None, None
    for run in runs:
        with tempfile.TemporaryDirectory() as tmp:
            found = tracker.download_artifact(run.info.run_id, RESULT_FILE, tmp)
            if found is not None:
                record = read_json(found)
                record.update(mlflow_run_id=run.info.run_id, tracking="logged")
                return tracker, record
    return tracker, None
