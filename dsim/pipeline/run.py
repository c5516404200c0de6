"""Run one cell from a resolved config and record it: ``result.json`` in the job dir first, then one MLflow run.

Order matters for reliability: the config is checked and both datasets are found before any work; a
cell whose key (:mod:`dsim.cell.key`) already has a finished run in the store is reused, not recomputed
(in a sweep, a child run tagged ``dsim.reused_from`` stands for it, so the sweep's runs hold every cell);
the tables and then the record are written into the job folder before the store is told; the MLflow run
is then created through :func:`dsim.tracking.queue.submit`, which keeps the record for ``dsim sync`` when the
store is locked, full or unreachable. The store side runs in a :class:`~dsim.tracking.session.StoreSession`
(a helper process for a single cell, so that opening MLflow overlaps with the work).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dsim import __version__
from dsim.analysis import transfer, visual, within_run
from dsim.cell import caveats, distribution
from dsim.cell.context import DatasetRef
from dsim.cell.key import cell_key, key_config
from dsim.cell.record import build_record, dataset_input, flatten, run_tags, write_tables
from dsim.configs import CellConfig
from dsim.data.images import dataset_fingerprint, listings_reused, scan_images
from dsim.pipeline.prepare import CellPlan, prepare
from dsim.pipeline.prepare import run as run_plan
from dsim.records import ARTIFACT_DIR, CELL_KEY_TAG, RESULT_FILE, CellRecord, write_json
from dsim.results import headline_values, shown_value
from dsim.tracking import ui
from dsim.tracking.queue import REUSED_FROM_TAG, RunPlan
from dsim.tracking.session import StoreSession

__all__ = ["ANALYSES", "run_cell"]

#: analysis steps, run on every cell's output in this order: ``step(config, output, artifact_dir) -> Added``
ANALYSES = (
    within_run.entropy_bias,  # entropy bias of per-item values, plots
    visual.views,  # analysis=umap/distance: UMAP map, missed features, I_dist views
    transfer.transfer_analysis,  # analysis=transfer: score vs distance, coefficients with intervals and p-values
)


def run_cell(
    cfg: CellConfig | Mapping,
    job_dir: Path,
    *,
    parent_run_id: str | None = None,
    sweep_dir: str | Path | None = None,
    choices: dict | None = None,
    conf_dirs=None,
    store: StoreSession | None = None,
    owned=(),
) -> dict:
    """Run one cell from its config (a :class:`~dsim.configs.CellConfig`, or a resolved ``dict``, checked
    first); return the record written to ``result.json``.

    :func:`~dsim.pipeline.prepare.prepare` → reuse or run → record → submit. ``parent_run_id`` (or
    ``sweep_dir``, whose parent run may not exist yet) makes the run a sweep's child; ``choices`` are Hydra's
    group choices and ``conf_dirs`` its config folders, for checking the config against its files; ``store``
    a :class:`~dsim.tracking.session.StoreSession` opened earlier (the CLI opens it before importing torch);
    ``owned`` as in :func:`dsim.configs.check`.
    """
    job_dir = Path(job_dir)
    with listings_reused():
        plan = prepare(cfg, choices, conf_dirs, owned=owned)
        with store or StoreSession.for_config(plan.config.tracking) as session:
            return _run(plan, job_dir, session, parent_run_id=parent_run_id, sweep_dir=sweep_dir)


def _run(plan: CellPlan, job_dir: Path, store: StoreSession, *, parent_run_id, sweep_dir) -> dict:
    config, spec, candidate = plan.config, plan.spec, plan.candidate
    key = _key(config, spec, plan.reference, candidate)
    if not config.force:
        reused = store.find_reusable(key)
        if reused is not None:  # nothing forwarded, nothing computed: the earlier run's record
            reused.update(reused=True, embedded={"reference": 0, "candidate": 0})
            write_json(job_dir / RESULT_FILE, reused)
            if parent_run_id or sweep_dir:  # the sweep holds every cell: a child run standing for the earlier one
                earlier = CellRecord.from_json(reused)
                store.submit(
                    RunPlan(
                        name=f"{earlier.extractor} {spec.name} {earlier.pair} (reused)",
                        uri=store.uri,
                        experiment=store.experiment,
                        tags={**run_tags(earlier), REUSED_FROM_TAG: reused["mlflow_run_id"]},
                        params=flatten(config.as_dict()),
                        metrics={**earlier.values, **_headline_metric(earlier)},
                        artifacts=[(str(job_dir / RESULT_FILE), None)],
                        parent_run_id=parent_run_id,
                        sweep_dir=str(sweep_dir) if sweep_dir else None,
                    )
                )
            return reused

    with caveats.collected(config.verbose) as found:
        output = run_plan(plan)
        for step in ANALYSES:
            step(config, output, job_dir / ARTIFACT_DIR).apply_to(output)

    record = build_record(config, output, plan.pair, spec)
    record.warnings = found
    record.cell_key, record.config = key, flatten(key_config(config, device=config.device))
    if candidate.generator is not None:
        record.generator = {**candidate.generator.describe(), "identity": candidate.generator.identity}
    if config.metric.bootstrap:
        from dsim.metrics.bootstrap import METHOD

        record.interval = {**METHOD, "replicates": config.metric.bootstrap, "seed": 0}
    if config.metric.floor:
        from dsim.metrics import floor

        record.floor = floor.method(record.values)
    artifacts = write_tables(output, job_dir / ARTIFACT_DIR)
    write_json(job_dir / RESULT_FILE, record.to_json())  # last: a result.json means the cell's files are all there
    mlflow_plan = RunPlan(
        name=f"{record.extractor} {spec.name} {record.pair}",
        uri=store.uri,
        experiment=store.experiment,
        tags={**run_tags(record), CELL_KEY_TAG: key, **caveats.tags(found), **_description(record, spec)},
        params={**flatten(config.as_dict()), **output.params},
        metrics={**output.values, **_headline_metric(record)},
        datasets=[dataset_input(record, side) for side in ("reference", "candidate")],
        artifacts=[(str(job_dir / RESULT_FILE), None)]
        + [(str(path), _artifact_folder(path, job_dir)) for path in artifacts + output.files],
        parent_run_id=parent_run_id,
        sweep_dir=str(sweep_dir) if sweep_dir else None,
        result_file=str(job_dir / RESULT_FILE),
    )
    record.mlflow_run_id = store.submit(mlflow_plan)
    record.tracking = "logged" if record.mlflow_run_id else "pending"
    return record.to_json()


def _artifact_folder(path, job_dir: Path) -> str:
    """The MLflow artifact folder of a file: ``artifacts``, or its sub-folder there (``artifacts/transfer``)."""
    try:
        folder = Path(path).resolve().parent.relative_to((Path(job_dir) / ARTIFACT_DIR).resolve())
    except ValueError:
        return ARTIFACT_DIR
    return "/".join((ARTIFACT_DIR, *folder.parts))


def _headline_metric(record: CellRecord) -> dict[str, float]:
    """The run's ``value`` metric: its first headline number as tables show it (one column for every cell)."""
    names = headline_values(record.values, record.headline())
    return {ui.HEADLINE_METRIC: shown_value(names[0], record.values[names[0]])} if names else {}


def _description(record: CellRecord, spec) -> dict[str, str]:
    """The run's description in the MLflow UI."""
    names = headline_values(record.values, record.headline())
    name = names[0] if names else None
    value = shown_value(name, record.values[name]) if name else None
    note = ui.run_note(record.extractor, spec.name, record.pair, name, value, spec.higher_is_better)
    return {ui.NOTE_TAG: note}


def _key(config: CellConfig, spec, reference, candidate) -> str:
    """The cell key (lists both datasets through the hash memo; resolves the extractor's weights)."""
    from dsim.embeddings.embed import resolve_device

    fingerprints = [_fingerprint(ref, spec, config.dataset.on_error) for ref in (reference, candidate)]
    identity = "none"
    if spec.kind == "distribution":
        identity = distribution.extractor_of(config, spec).identity
    return cell_key(
        config,
        device=resolve_device(config.device).type,
        reference_fingerprint=fingerprints[0],
        candidate_fingerprint=fingerprints[1],
        extractor_identity=identity,
        version=__version__,
    )


def _fingerprint(ref: DatasetRef, spec, on_error: str) -> str:
    """What a side's numbers depend on: its images' content, a generator's identity, or a statistics file's."""
    if ref.generator is not None and spec.kind == "generator":
        return f"generator:{ref.generator.identity}"
    if ref.stats is not None:
        return f"stats:{ref.stats.extractor_identity}:{ref.stats.fingerprint}:{ref.stats.sha256}"
    return dataset_fingerprint(scan_images(ref.path, on_error=on_error).files)
