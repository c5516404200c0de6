"""Distribution metrics in a cell: embed both datasets, compare the two feature sets.

Metrics that need class logits (``MetricSpec.input == "logits"``, e.g. the Inception Score) get the
extractor's logits layer. Per-image scores a metric returns (``MetricValues.per_image``) become one table
per side: image id (content hash), relative path, scores.

Memory stays bounded at a million images: a metric with a streamed form (``MetricSpec.from_stats``: FID)
reads each side's features from the store in chunks into float64 sufficient statistics, memoised beside
the store (:func:`dsim.embeddings.stats_files.memoised_stats`) so a rerun does not read them again; the kNN and
kernel metrics read only the rows of a seeded sample when ``metric.params.max_samples`` is set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dsim import metrics
from dsim.cell.context import CellOutput, DatasetRef, SideSummary
from dsim.configs import CellConfig
from dsim.data.naming import image_labels
from dsim.embeddings.embed import Embeddings, embed, resolve_device
from dsim.embeddings.stats_files import memoised_stats
from dsim.extractors import from_config
from dsim.metrics._fid import FeatureStats
from dsim.metrics._registry import keyword_params
from dsim.metrics.sampling import sample_rows


def extractor_of(config: CellConfig, spec):
    """The cell's extractor, at the layer the metric needs (the logits layer for ``input="logits"``)."""
    return from_config(config.extractor.node, layer="logits" if spec.input == "logits" else None)


def run(config: CellConfig, spec, params: dict, reference: DatasetRef, candidate: DatasetRef) -> CellOutput:
    """Embed both datasets through the cell's extractor and run the metric on the two feature sets."""
    extractor = extractor_of(config, spec)
    if reference.stats is not None:
        return _against_stats(config, spec, params, extractor, reference, candidate)
    sides = {
        side: embed(
            ref.path,
            extractor,
            settings=config.embedding,
        )
        for side, ref in (("reference", reference), ("candidate", candidate))
    }
    params = dict(params)
    max_samples = params.pop("max_samples", None)
    bootstrap = config.metric.bootstrap
    device = str(resolve_device(config.device))
    if spec.from_stats is not None and not bootstrap and max_samples is None:
        # streamed sufficient statistics: O(D²) memory whatever the number of images
        stats = {side: memoised_stats(emb) for side, emb in sides.items()}
        values = spec.from_stats(stats["reference"], stats["candidate"], device=device, **params)
        if config.metric.floor:
            values.update(
                metrics.streamed_floor(
                    lambda side, rows: FeatureStats.of_chunks(sides[side].subset(rows).iter_features()),
                    len(sides["reference"]),
                    len(sides["candidate"]),
                    spec.from_stats,
                    keys=metrics.floored_keys(spec),
                    params={"device": device, **params},
                    counterparts=counterparts(config, reference, sides),
                )
            )
        used = sides
    else:
        used = {
            side: _sampled(emb, max_samples, seed=params.get("seed") or 0, role=side, metric=spec.name)
            for side, emb in sides.items()
        }
        taken = keyword_params(spec.fn)
        if "device" in taken:  # a project's own metric need not take one
            params["device"] = device
        if "reference_labels" in taken:  # a label-aware metric (otdd)
            params.update(side_labels(used, params.pop("labels", None)))
        values = metrics.compute(
            spec.name,
            used["reference"].features,
            used["candidate"].features,
            bootstrap=bootstrap,
            floor=config.metric.floor,
            floor_counterparts=counterparts(config, reference, used) if config.metric.floor else None,
            **params,
        )
    per_image = getattr(values, "per_image", {}) or {}
    return CellOutput(
        values={name: float(v) for name, v in values.items()},
        reference=_summary(reference, sides["reference"]),
        candidate=_summary(candidate, sides["candidate"]),
        extractor=extractor,
        tables={f"per_image_{side}": per_image_table(used[side], columns) for side, columns in per_image.items()},
    )


def counterparts(config: CellConfig, reference: DatasetRef, sides: dict[str, Embeddings]) -> np.ndarray | None:
    """For ``metric.floor``: each candidate row's reference row when the candidate holds the reference's
    images — the same files (by content), or the reference's folder perturbed (``perturb=``, by name) — and -1
    for the others; ``None`` when the sets share no image (see :func:`dsim.metrics.floor.splits`)."""
    from dsim.cell.context import resolve_dataset
    from dsim.data.perturb import target_names

    ref, cand = sides["reference"], sides["candidate"]
    by_content = {sha: row for row, sha in enumerate(ref.hashes)}
    found = np.array([by_content.get(sha, -1) for sha in cand.hashes], dtype=np.int64)
    if config.perturb.name != "none" and config.pair.candidate != "generator":
        source = resolve_dataset(config.pair.candidate, config.dataset).path
        if Path(source).resolve() == Path(reference.path).resolve():  # the candidate is the reference perturbed
            by_name = {png: row for row, png in enumerate(target_names(ref.ids).values())}
            named = np.array([by_name.get(rel, -1) for rel in cand.ids], dtype=np.int64)
            found = np.where(found >= 0, found, named)
    return found if (found >= 0).any() else None


def side_labels(sides: dict[str, Embeddings], csv) -> dict:
    """``{reference_labels, candidate_labels}``: each used image's label, from ``csv`` or its sub-folder."""
    return {f"{side}_labels": image_labels(emb.ids, emb.hashes, csv, role=side) for side, emb in sides.items()}


def _against_stats(config: CellConfig, spec, params: dict, extractor, reference: DatasetRef, candidate: DatasetRef):
    """A reference given as a statistics file (:mod:`dsim.embeddings.stats_files`): only the candidate is embedded."""
    assert reference.stats is not None
    reference.stats.check_extractor(extractor)
    emb = embed(candidate.path, extractor, settings=config.embedding)
    params = {k: v for k, v in params.items() if k != "max_samples"}
    values = spec.from_stats(
        reference.stats.stats, memoised_stats(emb), device=str(resolve_device(config.device)), **params
    )
    meta = reference.stats.meta
    return CellOutput(
        values={name: float(v) for name, v in values.items()},
        reference=SideSummary(
            name=reference.name,
            root=reference.path.resolve(),
            fingerprint=meta["fingerprint"],
            n=reference.stats.stats.n,
        ),
        candidate=_summary(candidate, emb),
        extractor=extractor,
    )


def _sampled(embeddings: Embeddings, max_samples, **where) -> Embeddings:
    """``embeddings``, or a seeded sample of ``max_samples`` of its rows (only those are read from the store)."""
    rows = sample_rows(len(embeddings), max_samples, **where)
    return embeddings if rows is None else embeddings.subset(rows)


def per_image_table(embeddings: Embeddings, columns: dict) -> pd.DataFrame:
    """Scores aligned with ``embeddings`` rows → a table with the images' ids and relative paths."""
    table = pd.DataFrame({"image_id": embeddings.hashes, "relpath": embeddings.ids})
    for name, scores in columns.items():
        table[name] = scores
    return table


def _summary(ref: DatasetRef, embeddings: Embeddings) -> SideSummary:
    return SideSummary(
        name=ref.name,
        root=embeddings.root,
        fingerprint=embeddings.fingerprint,
        n=len(embeddings),
        skipped=embeddings.skipped,
        manifest=embeddings.manifest,
        n_embedded=embeddings.n_computed,
    )
