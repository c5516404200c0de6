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

from pathlib import Path

from dsim import __version__, configs, metrics
from dsim.analysis import visual, within_run
from dsim.cell import distribution, generated, paired
from dsim.cell.context import DatasetRef, pair_name, resolve_dataset
from dsim.cell.key import cell_key, key_config
from dsim.cell.record import build_record, dataset_input, flatten, run_tags, write_tables
from dsim.errors import DsimError
from dsim.data.images import dataset_fingerprint, listings_reused, resolve_dataset_dir, scan_images
from dsim.records import ARTIFACT_DIR, CELL_KEY_TAG, RESULT_FILE, CellRecord, write_json
from dsim.tracking.queue import REUSED_FROM_TAG, RunPlan
from dsim.tracking.session import StoreSession

#: metric kind → runner module with ``run(cfg, spec, params, reference, candidate) -> CellOutput``
RUNNERS = {"distribution": distribution, "paired": paired, "generator": generated}

#: analysis steps, run on every cell's output in this order: ``step(cfg, output, artifact_dir) -> Added``
ANALYSES = (
    within_run.entropy_bias,  # entropy bias of per-item values, plots
    visual.views,  # analysis=umap/distance: UMAP map, missed features, I_dist views
)


def run_cell(cfg: dict, job_dir: Path, *, parent_run_id: str | None = None, sweep_dir: str | Path | None = None,
             choices: dict | None = None, conf_dirs=None, store: StoreSession | None = None) -> dict:
    """Run one cell from a resolved config (``dict``); return the record written to ``result.json``.

    ``parent_run_id`` (or ``sweep_dir``, whose parent run may not exist yet) makes the run a sweep's
    child; ``choices`` are Hydra's group choices and ``conf_dirs`` its config folders, for checking the
    config against its files; ``store``
    a :class:`~dsim.tracking.session.StoreSession` opened earlier (the CLI opens it before importing torch).
    """
    configs.check(cfg, choices, conf_dirs)
    spec = metrics.lookup(cfg["metric"]["name"], cfg["metric"])
    params = metrics.check_params(spec, cfg["metric"].get("params") or {})  # one check, both kinds
    reference = resolve_dataset(cfg["pair"]["reference"], cfg["dataset"])
    candidate = generated_candidate(cfg, spec) or resolve_dataset(cfg["pair"]["candidate"], cfg["dataset"])
    if spec.kind == "generator" and candidate.generator is None:
        raise DsimError(f"metric={spec.name} evaluates a generator: set pair.candidate=generator and "
                        "generator=toy (or your own conf/generator/NAME.yaml)")
    if candidate.stats is not None:
        raise DsimError(f"pair.candidate={candidate.path}: a statistics file can stand in for the reference only")
    if reference.stats is not None and (spec.from_stats is None or cfg["metric"].get("bootstrap")
                                        or params.get("max_samples") is not None):
        takes = ", ".join(sorted(name for name, s in metrics.METRICS.items() if s.from_stats is not None))
        raise DsimError(f"pair.reference={reference.path} is a statistics file (N, mean, covariance): metric="
                        f"{spec.name} needs the features themselves (and intervals need them too); metrics that "
                        f"take statistics: {takes}")
    for ref in (reference, candidate):
        if ref.stats is None and (spec.kind != "generator" or ref.generator is None):  # PPL drives the model
            resolve_dataset_dir(ref.path)  # both folders exist before any work starts
    pair = pair_name(cfg["pair"], reference, candidate)  # the pair as configured, perturbed or not
    job_dir = Path(job_dir)
    with listings_reused(), store or StoreSession.for_config(cfg) as session:
        candidate = perturbed_candidate(cfg, candidate)
        return _run(cfg, spec, params, reference, candidate, pair, job_dir, session, parent_run_id=parent_run_id,
                    sweep_dir=sweep_dir)


def _run(cfg: dict, spec, params: dict, reference, candidate, pair: str, job_dir: Path, store: StoreSession, *,
         parent_run_id, sweep_dir):
    key = _key(cfg, spec, reference, candidate)
    if not cfg.get("force"):
        reused = store.find_reusable(key)
        if reused is not None:  # nothing forwarded, nothing computed: the earlier run's record
            reused.update(reused=True, embedded={"reference": 0, "candidate": 0})
            write_json(job_dir / RESULT_FILE, reused)
            if parent_run_id or sweep_dir:  # the sweep holds every cell: a child run standing for the earlier one
                earlier = CellRecord.from_json(reused)
                store.submit(RunPlan(
                    name=f"{earlier.extractor} {spec.name} {earlier.pair} (reused)", uri=store.uri,
                    experiment=store.experiment, tags={**run_tags(earlier), REUSED_FROM_TAG: reused["mlflow_run_id"]},
                    params=flatten(cfg), metrics=earlier.values, artifacts=[(str(job_dir / RESULT_FILE), None)],
                    parent_run_id=parent_run_id, sweep_dir=str(sweep_dir) if sweep_dir else None))
            return reused

    output = RUNNERS[spec.kind].run(cfg, spec, params, reference, candidate)
    for step in ANALYSES:
        step(cfg, output, job_dir / ARTIFACT_DIR).apply_to(output)

    record = build_record(cfg, output, pair, spec)
    record.cell_key, record.config = key, flatten(key_config(cfg, device=cfg["device"]))
    if candidate.generator is not None:
        record.generator = {**candidate.generator.describe(), "identity": candidate.generator.identity}
    if cfg["metric"].get("bootstrap"):
        from dsim.metrics.bootstrap import METHOD

        record.interval = {**METHOD, "replicates": int(cfg["metric"]["bootstrap"]), "seed": 0}
    artifacts = write_tables(output, job_dir / ARTIFACT_DIR)
    write_json(job_dir / RESULT_FILE, record.to_json())  # last: a result.json means the cell's files are all there
    plan = RunPlan(name=f"{record.extractor} {spec.name} {record.pair}", uri=store.uri,
                   experiment=store.experiment, tags={**run_tags(record), CELL_KEY_TAG: key},
                   params=flatten(cfg), metrics=output.values,
                   datasets=[dataset_input(record, side) for side in ("reference", "candidate")],
                   artifacts=[(str(job_dir / RESULT_FILE), None)]
                   + [(str(path), ARTIFACT_DIR) for path in artifacts + output.files],
                   parent_run_id=parent_run_id, sweep_dir=str(sweep_dir) if sweep_dir else None,
                   result_file=str(job_dir / RESULT_FILE))
    record.mlflow_run_id = store.submit(plan)
    record.tracking = "logged" if record.mlflow_run_id else "pending"
    return record.to_json()


def generated_candidate(cfg: dict, spec) -> DatasetRef | None:
    """``pair.candidate=generator``: the configured generator's samples folder (made now, once), or for a
    metric that drives the model itself (``kind="generator"``: PPL) the generator alone; else ``None``."""
    from dsim.embeddings.embed import resolve_device
    from dsim.generators import CANDIDATE, GeneratorSpec, generated_dataset, samples_folder

    if str(cfg["pair"]["candidate"]) != CANDIDATE:
        return None
    generator = GeneratorSpec.from_config(cfg.get("generator"))
    if not generator.active:
        raise DsimError("pair.candidate=generator needs a generator: add generator=toy (or your own "
                        "conf/generator/NAME.yaml with _target_)")
    device = resolve_device(cfg["device"])
    if spec.kind == "generator":
        return DatasetRef(generator.name, samples_folder(generator, cfg["cache_dir"], device.type), generator)
    folder = generated_dataset(generator, cfg["cache_dir"], device=str(device), progress=cfg["progress"])
    return DatasetRef(generator.name, folder, generator)


def perturbed_candidate(cfg: dict, candidate: DatasetRef) -> DatasetRef:
    """The candidate as the cell sees it: under ``perturb=``, the folder of its perturbed images
    (:mod:`dsim.data.perturb`), named ``<name>+<perturbation>``; else itself."""
    from dsim.data.perturb import Perturbation, perturbed_dataset

    spec = Perturbation.from_config(cfg.get("perturb"))
    if not spec.active:
        return candidate
    folder = perturbed_dataset(candidate.path, spec, cfg["cache_dir"], on_error=cfg["dataset"]["on_error"],
                               progress=cfg["progress"])
    return DatasetRef(f"{candidate.name}+{spec.label()}", folder, candidate.generator)


def _key(cfg: dict, spec, reference, candidate) -> str:
    """The cell key (lists both datasets through the hash memo; resolves the extractor's weights)."""
    from dsim.embeddings.embed import resolve_device

    fingerprints = [_fingerprint(ref, spec, cfg["dataset"]["on_error"]) for ref in (reference, candidate)]
    identity = "none"
    if spec.kind == "distribution":
        identity = distribution.extractor_of(cfg, spec).identity
    return cell_key(cfg, device=resolve_device(cfg["device"]).type, reference_fingerprint=fingerprints[0],
                    candidate_fingerprint=fingerprints[1], extractor_identity=identity, version=__version__)


def _fingerprint(ref: DatasetRef, spec, on_error: str) -> str:
    """What a side's numbers depend on: its images' content, a generator's identity, or a statistics file's."""
    if ref.generator is not None and spec.kind == "generator":
        return f"generator:{ref.generator.identity}"
    if ref.stats is not None:
        return f"stats:{ref.stats.extractor_identity}:{ref.stats.fingerprint}:{ref.stats.sha256}"
    return dataset_fingerprint(scan_images(ref.path, on_error=on_error).files)
