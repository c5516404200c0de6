"""Paired metrics in a cell: pair the two datasets image by image (``pairing=``), score every pair.

Steps: :func:`dsim.cell.pairing.pair_datasets` pairs each candidate image with a reference image; every pair
is decoded, brought to one size (:func:`dsim.cell.pairing.align_pair`, ``pairing.size``) and scored in batches
(metrics on embeddings, such as DreamSim, use the embedding cache instead); each image's entropy is taken
from the entropy cache, or computed from the decoded image and cached. The cell reports the mean, median,
best and worst pair values, a ``pairs`` table (every pair, its value and entropies) and a ``matches``
table (the best, average and worst ``pairing.k`` pairs). Entropy correlations and plots are added by
:mod:`dsim.analysis.within_run`.

The extractor actually used by ``pairing=nearest`` (after the ``auto`` fallback) is returned in the cell's
``CellOutput.params`` as ``pairing.resolved_extractor`` (and its identity), so the MLflow params record it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dsim.cell.context import CellOutput, DatasetRef, SideSummary
from dsim.cell.pairing import align_pair, pair_datasets
from dsim.configs import CellConfig
from dsim.data.images import load_rgb
from dsim.embeddings.embed import embed, resolve_device
from dsim.embeddings.entropy import EntropyCache
from dsim.errors import DsimError, ImageReadError
from dsim.metrics._registry import keyword_params, pair_summary
from dsim.metrics.paired import cosine_distance


def network_of(spec, params: dict):
    """The network a paired metric's numbers depend on (recorded as the cell's extractor), or ``None``."""
    if spec.embedding:
        from dsim.extractors import build

        return build(spec.embedding, weights=params.get("weights", "default"))
    return spec.network(params) if spec.network else None


def run(config: CellConfig, spec, params: dict, reference: DatasetRef, candidate: DatasetRef) -> CellOutput:
    """Pair the two datasets, score every pair, summarise (with ``metric.bootstrap`` intervals over pairs)."""
    name = spec.name
    how, common = config.pairing, config.embedding.as_kwargs()
    pairing = pair_datasets(
        reference.path,
        candidate.path,
        method=how.method,
        extractor=how.extractor,
        weights=how.weights,
        distance=how.distance,
        seed=how.seed,
        **common,
    )
    resolved: dict[str, str] = {}
    if pairing.extractor is not None:
        resolved = {
            "pairing.resolved_extractor": pairing.extractor.name,
            "pairing.resolved_extractor_identity": pairing.extractor.identity,
        }

    network = network_of(spec, params)
    skipped = {side: dict(pairing.skipped[side]) for side in ("reference", "candidate")}
    for rel in pairing.unmatched:
        skipped["candidate"][rel] = "no namesake in the reference set (pairing=by_name)"
    entropies = EntropyCache(config.cache_dir)
    if spec.embedding:
        embedding = {**common, "batch_size": params.get("batch_size", common["batch_size"])}  # the metric's own
        keep, values, ent_ref, ent_cand = _score_embeddings(
            pairing, network, entropies, skipped, embedding, roots=(reference.path, candidate.path)
        )
    else:
        kwargs = dict(params)
        if "device" in keyword_params(spec.pair_values or spec.fn):
            kwargs.setdefault("device", str(resolve_device(config.device)))
        keep, values, ent_ref, ent_cand = _score_images(
            pairing,
            spec,
            kwargs,
            entropies,
            skipped,
            size=how.size,
            chunk=config.batch_size,
            on_error=config.dataset.on_error,
        )
    if not keep:
        raise DsimError(f"{name}: no readable image pair between {reference.path} and {candidate.path}")

    table = pd.DataFrame(
        {
            "candidate": [pairing.candidate[i].relpath for i in keep],
            "reference": [pairing.reference[i].relpath for i in keep],
            "candidate_id": [pairing.candidate[i].sha256 for i in keep],
            "reference_id": [pairing.reference[i].sha256 for i in keep],
        }
    )
    if pairing.distance is not None:
        table["match_distance"] = pairing.distance[keep]
    table[name] = values
    table["entropy_candidate"] = ent_cand
    table["entropy_reference"] = ent_ref
    table["entropy"] = (np.asarray(ent_cand) + np.asarray(ent_ref)) / 2.0

    from dsim.cell.matches import select_matches

    summary = dict(pair_summary(spec, values, bootstrap=config.metric.bootstrap))
    if pairing.distance is not None:
        summary["match_distance_mean"] = float(np.mean(pairing.distance[keep]))
    random_weights = bool(
        (network is not None and network.is_random) or (pairing.extractor is not None and pairing.extractor.is_random)
    )
    output = CellOutput(
        values=summary,
        reference=_side(reference, pairing, "reference", skipped),
        candidate=_side(candidate, pairing, "candidate", skipped),
        extractor=network,
        tables={
            "pairs": table,
            "matches": select_matches(table, name, k=how.k, higher_is_better=spec.higher_is_better),
        },
        random_weights=random_weights,
        params=resolved,
    )
    return output


def _side(ref: DatasetRef, pairing, side: str, skipped: dict) -> SideSummary:
    return SideSummary(
        name=ref.name,
        root=ref.path.resolve(),
        fingerprint=getattr(pairing, f"{side}_fingerprint"),
        n=getattr(pairing, f"n_{side}"),
        skipped=skipped[side],
        manifest=pairing.manifests[side],
        n_embedded=pairing.n_embedded[side],
    )


def _entropy(cache: EntropyCache, ref, rgb=None) -> float:
    cached = cache.get(ref.sha256)
    if cached is not None:
        return cached
    return cache.put(ref.sha256, rgb if rgb is not None else load_rgb(ref.path))


def _score_images(pairing, spec, kwargs, entropies, skipped, *, size, chunk, on_error):
    keep, values, ent_ref, ent_cand = [], [], [], []
    for start in range(0, len(pairing), chunk):
        refs, cands, idx = [], [], []
        for i in range(start, min(start + chunk, len(pairing))):
            decoded = []
            for side, ref in (("reference", pairing.reference[i]), ("candidate", pairing.candidate[i])):
                try:
                    decoded.append(load_rgb(ref.path))
                except ImageReadError as error:
                    if on_error != "skip":
                        raise
                    skipped[side][ref.relpath] = error.reason
                    break
            if len(decoded) < 2:
                continue
            ent_ref.append(_entropy(entropies, pairing.reference[i], decoded[0]))
            ent_cand.append(_entropy(entropies, pairing.candidate[i], decoded[1]))
            a, b = align_pair(*decoded, size=size) if spec.aligned else decoded
            refs.append(a)
            cands.append(b)
            idx.append(i)
        if idx:
            values.extend(np.asarray(spec.pair_values(refs, cands, **kwargs), dtype=np.float64).tolist())
            keep.extend(idx)
    return keep, np.asarray(values), ent_ref, ent_cand


def _score_embeddings(pairing, extractor, entropies, skipped, common, roots):
    features = {}
    for side, root in zip(("reference", "candidate"), roots):
        found = embed(root, extractor, **common)
        features.update(zip(found.hashes, found.features))
        pairing.n_embedded[side] += found.n_computed
    keep = [
        i
        for i in range(len(pairing))
        if pairing.reference[i].sha256 in features and pairing.candidate[i].sha256 in features
    ]
    for i in range(len(pairing)):
        for side, ref in (("reference", pairing.reference[i]), ("candidate", pairing.candidate[i])):
            if ref.sha256 not in features:
                skipped[side].setdefault(ref.relpath, "unreadable image")
    values = (
        cosine_distance(
            np.stack([features[pairing.reference[i].sha256] for i in keep]),
            np.stack([features[pairing.candidate[i].sha256] for i in keep]),
        )
        if keep
        else np.array([])
    )
    ent_ref = [_entropy(entropies, pairing.reference[i]) for i in keep]
    ent_cand = [_entropy(entropies, pairing.candidate[i]) for i in keep]
    return keep, values, ent_ref, ent_cand
