"""Metrics of a generator itself in a cell (``kind="generator"``: PPL): the model is driven, not its samples.

The candidate is ``pair.candidate=generator`` (its :class:`~dsim.generators.GeneratorSpec` on the
:class:`~dsim.cell.context.DatasetRef`); the reference is listed and recorded (for the results table's
pair), never read. The network the numbers depend on (PPL's LPIPS-VGG) is recorded as the cell's
extractor; the per-path table (``t``, path length, kept by the percentile trimming) is an artifact.
"""

from __future__ import annotations

import pandas as pd

from dsim.cell.context import CellOutput, DatasetRef, SideSummary
from dsim.configs import CellConfig
from dsim.data.images import dataset_fingerprint, scan_images
from dsim.embeddings.embed import resolve_device
from dsim.metrics._ppl import summarize
from dsim.metrics.bootstrap import bootstrap_intervals


def run(config: CellConfig, spec, params: dict, reference: DatasetRef, candidate: DatasetRef) -> CellOutput:
    device = str(resolve_device(config.device))
    assert candidate.generator is not None  # prepare() gives a generator metric a generator
    model = candidate.generator.load(device)
    params = dict(params)
    if params.get("n_samples", spec.defaults().get("n_samples")) is None:  # as many paths as the generator's samples
        params["n_samples"] = candidate.generator.n_samples
    if config.progress:
        from tqdm.auto import tqdm

        with tqdm(total=params["n_samples"], desc=spec.name, unit="path") as bar:
            values = spec.fn(model, device=device, progress=bar.update, **params)
    else:
        values = spec.fn(model, device=device, **params)
    network = spec.network(params) if spec.network else None
    per_path = values.per_image.get("candidate", {})
    values = dict(values)
    if config.metric.bootstrap:  # over the paths, trimmed as the estimate is
        values.update(_path_intervals(spec, params, per_path["path_length"], config.metric.bootstrap))
    listing = scan_images(reference.path, on_error=config.dataset.on_error)
    return CellOutput(
        values={name: float(v) for name, v in values.items()},
        reference=SideSummary(
            name=reference.name,
            root=listing.root,
            fingerprint=dataset_fingerprint(listing.files),
            n=len(listing.files),
            skipped=dict(listing.unreadable),
            manifest=[(ref.relpath, ref.sha256) for ref in listing.files],
        ),
        candidate=SideSummary(
            name=candidate.name,
            root=candidate.path.resolve(),
            fingerprint=f"generator:{candidate.generator.identity}",
            n=len(next(iter(per_path.values()), [])),
        ),
        extractor=network,
        tables={"per_image_candidate": pd.DataFrame({"path": range(len(per_path.get("t", []))), **per_path})},
        random_weights=bool(network is not None and network.is_random),
    )


def _path_intervals(spec, params: dict, lengths, replicates: int) -> dict[str, float]:
    defaults = spec.defaults()
    trim = (
        params.get("discard_lower", defaults.get("discard_lower")),
        params.get("discard_upper", defaults.get("discard_upper")),
    )

    def summary(a, _b):
        return summarize(a, *trim, name=spec.name)

    return bootstrap_intervals(
        summary,
        lengths,
        lengths,
        replicates=replicates,
        paired=True,
        keys=[spec.name, f"{spec.name}_untrimmed"],
        ranges=spec.ranges,
    )
