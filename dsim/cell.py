"""One grid cell: embed a pair's two datasets, compute a metric, write ``result.json``, log the run.

The cell reads only a plain, resolved config mapping and calls the public API (``dsim.embed``,
``dsim.metrics``); MLflow stays behind ``dsim.tracking``.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dsim import __version__, metrics
from dsim.cache import atomic_write_text
from dsim.embed import embed, resolve_device
from dsim.errors import DsimError
from dsim.extractors import build
from dsim.tracking import Tracker, resolve_uri

RESULT_FILE = "result.json"


@dataclass(frozen=True)
class DatasetRef:
    """A pair side: the name shown in records and the folder it resolves to."""

    name: str
    path: Path


def resolve_dataset(spec: str, dataset_cfg: dict) -> DatasetRef:
    """A catalogue name (``dataset.catalog``) or a folder path → :class:`DatasetRef`."""
    spec = str(spec)
    catalog = dataset_cfg.get("catalog") or {}
    if spec in catalog:
        return DatasetRef(spec, Path(dataset_cfg["root"]) / catalog[spec])
    path = Path(spec).expanduser()
    return DatasetRef(path.resolve().name or str(path), path)


def pair_name(pair_cfg: dict, reference: DatasetRef, candidate: DatasetRef) -> str:
    return pair_cfg.get("name") or f"{reference.name}_vs_{candidate.name}"


def git_commit(directory: Path) -> str:
    """``HEAD`` of the git work tree at ``directory`` (``+dirty`` when modified), or ``unknown``."""
    try:
        head = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def flatten(mapping: dict, prefix: str = "") -> dict[str, object]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (lists kept as values)."""
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def run_cell(cfg: dict, job_dir: Path, *, parent_run_id: str | None = None) -> dict:
    """Run one cell from a resolved config (``dict``); return the record written to ``result.json``."""
    dataset_cfg = cfg["dataset"]
    reference = resolve_dataset(cfg["pair"]["reference"], dataset_cfg)
    candidate = resolve_dataset(cfg["pair"]["candidate"], dataset_cfg)
    extractor_options = {k: v for k, v in cfg["extractor"].items() if k not in ("_target_", "name")}
    extractor = build(cfg["extractor"]["name"], **extractor_options)
    metric_name = cfg["metric"]["name"]
    if metric_name not in metrics.METRICS:
        raise DsimError(f"unknown metric {metric_name!r} (choose from: {', '.join(metrics.available())})")

    embeddings = {side: embed(ref.path, extractor, device=cfg["device"], batch_size=cfg["batch_size"],
                              num_workers=cfg["num_workers"], cache_dir=cfg["cache_dir"],
                              on_error=dataset_cfg["on_error"], progress=cfg["progress"])
                  for side, ref in (("reference", reference), ("candidate", candidate))}
    values = metrics.compute(metric_name, embeddings["reference"].features, embeddings["candidate"].features,
                             device=str(resolve_device(cfg["device"])), **(cfg["metric"].get("params") or {}))

    record = _record(cfg, extractor, metric_name, pair_name(cfg["pair"], reference, candidate),
                     reference, candidate, embeddings, values)
    tracker = Tracker(resolve_uri(cfg["tracking"]["uri"], cfg["tracking"]["store_dir"]),
                      experiment=cfg["tracking"]["experiment"])
    run_id = tracker.start_run(f"{record['extractor']} {metric_name} {record['pair']}",
                               tags=_tags(record), parent_id=parent_run_id)
    record["mlflow_run_id"] = run_id
    job_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(job_dir / RESULT_FILE, json.dumps(record, indent=2) + "\n")
    try:
        tracker.log(run_id, params=flatten(cfg), metrics=values)
        tracker.log_artifact(run_id, job_dir / RESULT_FILE)
    except BaseException:
        tracker.finish(run_id, status="FAILED")
        raise
    tracker.finish(run_id)
    return record


def _record(cfg, extractor, metric_name, pair, reference, candidate, embeddings, values) -> dict:
    ref, cand = embeddings["reference"], embeddings["candidate"]
    return {
        "extractor": extractor.name,
        "metric": metric_name,
        "pair": pair,
        "reference": str(ref.root),
        "candidate": str(cand.root),
        "n_reference": len(ref),
        "n_candidate": len(cand),
        "values": values,
        "reference_name": reference.name,
        "candidate_name": candidate.name,
        "reference_fingerprint": ref.fingerprint,
        "candidate_fingerprint": cand.fingerprint,
        "extractor_identity": extractor.identity,
        "weights_checksum": ref.weights_checksum,
        "random_weights": ref.random_weights,
        "skipped": {"reference": ref.skipped, "candidate": cand.skipped},
        "n_skipped": len(ref.skipped) + len(cand.skipped),
        "embedded_now": ref.n_computed + cand.n_computed,
        "git_commit": git_commit(Path.cwd()),
        "dsim_version": __version__,
    }


def _tags(record: dict) -> dict[str, str]:
    tags = {
        "dsim.extractor": record["extractor"],
        "dsim.extractor.identity": record["extractor_identity"],
        "dsim.extractor.weights_checksum": record["weights_checksum"],
        "dsim.extractor.random_weights": str(record["random_weights"]).lower(),
        "dsim.metric": record["metric"],
        "dsim.pair": record["pair"],
        "dsim.reference.fingerprint": record["reference_fingerprint"],
        "dsim.candidate.fingerprint": record["candidate_fingerprint"],
        "dsim.n_skipped": str(record["n_skipped"]),
        "dsim.git_commit": record["git_commit"],
        "dsim.version": record["dsim_version"],
        "mlflow.source.git.commit": record["git_commit"].removesuffix("+dirty"),
    }
    if record["random_weights"]:
        tags["dsim.warning"] = "RANDOM WEIGHTS: plumbing test only, not a real result"
    return tags
