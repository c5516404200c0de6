"""Distribution metrics in a cell: embed both datasets, compare the two feature sets.

Metrics that need class logits (``MetricSpec.input == "logits"``, e.g. the Inception Score) get the
extractor's logits layer. Per-image scores a metric returns (``MetricValues.per_image``) become one table
per side: image id (content hash), relative path, scores.
"""

from __future__ import annotations

import pandas as pd

from dsim import metrics
from dsim.cell.context import CellOutput, DatasetRef, SideSummary
from dsim.embed import Embeddings, embed, resolve_device
from dsim.extractors import build


def build_extractor(extractor_cfg: dict, *, layer: str | None = None):
    options = {k: v for k, v in extractor_cfg.items() if k not in ("_target_", "name")}
    if layer is not None:
        options["layer"] = layer
    return build(extractor_cfg["name"], **options)


def run(cfg: dict, reference: DatasetRef, candidate: DatasetRef) -> CellOutput:
    spec = metrics.METRICS[cfg["metric"]["name"]]
    extractor = build_extractor(cfg["extractor"], layer="logits" if spec.input == "logits" else None)
    sides = {side: embed(ref.path, extractor, device=cfg["device"], batch_size=cfg["batch_size"],
                         num_workers=cfg["num_workers"], cache_dir=cfg["cache_dir"],
                         on_error=cfg["dataset"]["on_error"], progress=cfg["progress"])
             for side, ref in (("reference", reference), ("candidate", candidate))}
    params = dict(cfg["metric"].get("params") or {})
    if cfg["metric"].get("bootstrap"):
        params["bootstrap"] = cfg["metric"]["bootstrap"]
    values = metrics.compute(spec.name, sides["reference"].features, sides["candidate"].features,
                             device=str(resolve_device(cfg["device"])), **params)
    per_image = getattr(values, "per_image", {}) or {}
    return CellOutput(
        values={name: float(v) for name, v in values.items()},
        reference=_summary(reference, sides["reference"]),
        candidate=_summary(candidate, sides["candidate"]),
        extractor=extractor,
        tables={f"per_image_{side}": per_image_table(sides[side], columns) for side, columns in per_image.items()},
    )


def per_image_table(embeddings: Embeddings, columns: dict) -> pd.DataFrame:
    """Scores aligned with ``embeddings`` rows → a table with the images' ids and relative paths."""
    table = pd.DataFrame({"image_id": embeddings.hashes, "relpath": embeddings.ids})
    for name, scores in columns.items():
        table[name] = scores
    return table


def _summary(ref: DatasetRef, embeddings: Embeddings) -> SideSummary:
    return SideSummary(name=ref.name, root=embeddings.root, fingerprint=embeddings.fingerprint,
                       n=len(embeddings), skipped=embeddings.skipped, manifest=embeddings.manifest,
                       n_embedded=embeddings.n_computed)
