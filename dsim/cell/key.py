"""The cell key: what makes two cells the same computation, so a finished one is reused, not redone.

``cell_key`` hashes the cell's resolved config (without the keys that only change how it runs: progress
bars, workers, batch size, where the cache and the store are), both datasets' content fingerprints, the
extractor identity (name, weights checksum, layer, preprocessing) and the dsim version. A finished MLflow
run tagged with the same ``dsim.cell_key`` holds the answer already; ``force=true`` recomputes anyway.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from dsim.configs import CellConfig

#: config keys that change how a cell runs, never its numbers
OPERATIONAL_KEYS = (
    "progress",
    "verbose",
    "num_workers",
    "batch_size",
    "cache_dir",
    "tracking",
    "results_file",
    "force",
)
#: dataset keys that say where the data lives (its content is in the fingerprints)
LOCATION_KEYS = ("root", "catalog")


def key_config(config: CellConfig, *, device: str) -> dict:
    """The part of a cell's resolved config that determines its numbers (``device`` resolved: cpu, cuda)."""
    cfg = config.as_dict()
    kept = {k: v for k, v in cfg.items() if k not in OPERATIONAL_KEYS}
    kept["dataset"] = {k: v for k, v in (cfg.get("dataset") or {}).items() if k not in LOCATION_KEYS}
    kept["pairing"] = dict(cfg.get("pairing") or {})
    kept["device"] = device
    return kept


def cell_key(
    config: CellConfig,
    *,
    device: str,
    reference_fingerprint: str,
    candidate_fingerprint: str,
    extractor_identity: str,
    version: str,
) -> str:
    """Hex SHA-256 over the cell's number-determining config, data fingerprints, extractor and dsim version."""
    payload = {
        "config": key_config(config, device=device),
        "reference": reference_fingerprint,
        "candidate": candidate_fingerprint,
        "extractor": extractor_identity,
        "dsim": version,
    }
    payload.update(input_files(config))
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def input_files(config: CellConfig) -> dict[str, str]:
    """The SHA-256 of the files the config names whose content feeds the numbers (``analysis.transfer.scores``,
    ``otdd``'s ``metric.params.labels``): an edited file at the same path is a new cell. Empty for a cell
    without one (its key is unchanged)."""
    from dsim.util.fileio import file_sha256

    transfer = config.analysis.transfer
    named = {
        "transfer_scores": transfer.scores if transfer is not None else None,
        "metric_labels": config.metric.params.get("labels"),
    }
    out = {}
    for key, path in named.items():
        if path:
            try:
                out[key] = file_sha256(Path(str(path)).expanduser())
            except OSError:
                out[key] = "unreadable"
    return out


def is_operational(flat_key: str) -> bool:
    """Whether a flattened config key (``tracking.uri``, ``dataset.root``) never changes a cell's numbers."""
    head, _, rest = flat_key.partition(".")
    if head in OPERATIONAL_KEYS:
        return True
    if head == "dataset" and rest.split(".")[0] in LOCATION_KEYS:
        return True
    return head == "pairing" and rest.startswith("resolved_")
