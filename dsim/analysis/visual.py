"""Visual analysis of a cell (``analysis=umap``, ``analysis=distance``, or both) and of a sweep.

:func:`views` runs on every cell's output after its runner (an analysis step of :mod:`dsim.pipeline.run`);
it does nothing unless the config's ``analysis`` group asks for it. Features come from the embedding cache:
:func:`dsim.embeddings.embed.embed` with the cell's extractor finds every image the runner embedded already
and forwards none of them again (only a dataset the cell has not seen — ``analysis.umap.datasets``,
``analysis.distance.candidates``, or a paired cell's sets — is embedded once, into the cache). The files it
writes next to the cell's tables are logged as artifacts of the cell's MLflow run:

``analysis.umap`` (:mod:`~dsim.analysis.embedding_map`)
    ``umap.html`` (the 2-D and 3-D maps on one offline page; hover: dataset, path, thumbnail),
    ``umap_2d.png``, ``umap_3d.png``, ``umap_points.csv`` (every image: dataset, path, flags, coordinates),
    ``missed_reference.csv`` / ``.png`` (reference images with no candidate within their k-NN radius, most
    distant first) and ``far_candidate.csv`` / ``.png`` (candidates outside every reference k-NN ball).
``analysis.distance`` (:mod:`~dsim.analysis.distance_views`)
    ``distance_per_image.csv`` (I_dist, scaled I_dist, rank, half, third[, score, moving average]),
    ``distance_splits.csv`` (halves and thirds: n, I_dist mean and std[, score mean and std]),
    ``distance_violin.png`` and, with a score file, ``distance_score.png``.

:func:`sweep_visual_analysis` runs at the end of a multirun with ``analysis.distance``: every cell's per-image
I_dist (its ``distance_per_image.csv``, or an ``odist`` cell's ``per_image_candidate.csv``) is gathered
per extractor × reference into one violin plot of all the sweep's candidates, a split table and, when
scored, a score figure, logged on the sweep's parent run under ``visual_analysis/``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dsim.analysis import distance_views as dv
from dsim.analysis import embedding_map as em
from dsim.analysis.sweep import guarded
from dsim.cell.context import Added, resolve_dataset
from dsim.configs import CellConfig, DistanceConfig, UmapConfig
from dsim.data.images import image_path
from dsim.embeddings.embed import Embeddings, embed, resolve_device
from dsim.errors import DsimError
from dsim.records import ARTIFACT_DIR, RESULT_FILE, CellRecord
from dsim.util.fileio import atomic_write_text

SWEEP_DIR = "visual_analysis"


@dataclass
class Side:
    """One dataset on the map / in the views: its shown label, catalogue name, role and embeddings."""

    label: str
    name: str
    role: str  # reference | candidate | extra
    embeddings: Embeddings


class _Datasets:
    """The cell's datasets (and extra ones) embedded through the cell's extractor, via the cache."""

    def __init__(self, config: CellConfig, output):
        from dsim.extractors import from_config

        self.config = config
        self.output = output
        self.extractor = from_config(config.extractor.node)
        self._cache: dict[str, Embeddings] = {}

    def embeddings(self, root: Path) -> Embeddings:
        key = str(Path(root).resolve())
        if key not in self._cache:
            self._cache[key] = embed(root, self.extractor, settings=self.config.embedding)
        return self._cache[key]

    def side(self, role: str) -> Side:
        summary = getattr(self.output, role)
        return Side(f"{summary.name} ({role})", summary.name, role, self.embeddings(summary.root))

    def extra(self, spec: str) -> Side:
        ref = resolve_dataset(spec, self.config.dataset)
        if not Path(ref.path).is_dir():
            raise DsimError(f"analysis: dataset {spec!r} is neither a catalogue name nor a folder ({ref.path})")
        return Side(ref.name, ref.name, "extra", self.embeddings(ref.path))

    @property
    def device(self) -> str:
        return str(resolve_device(self.config.device))

    @property
    def header(self) -> str:
        extractor = self.extractor.name + (" [RANDOM WEIGHTS: plumbing test only]" if self.extractor.is_random else "")
        return f"{extractor}: {self.output.reference.name} vs {self.output.candidate.name}"


def check(config: CellConfig) -> None:
    """The ``analysis`` options that can be wrong before any work, as one-line :class:`DsimError` s: map
    dimensions, the extra datasets (each a catalogue name or a folder) and the score file."""
    umap, distance = config.analysis.umap, config.analysis.distance
    for dim in umap.dims if umap else ():
        if dim not in (2, 3):
            raise DsimError(f"analysis.umap.dims: choose 2 and/or 3, got {dim!r}")
    for spec in [*(umap.datasets if umap else ()), *(distance.candidates if distance else ())]:
        ref = resolve_dataset(spec, config.dataset)
        if not Path(ref.path).is_dir():
            raise DsimError(f"analysis: dataset {spec!r} is neither a catalogue name nor a folder ({ref.path})")
    if distance and distance.score_file and not Path(distance.score_file).is_file():
        raise DsimError(f"analysis.distance.score_file: no such file {distance.score_file}")


def views(config: CellConfig, output, artifact_dir: Path) -> Added:
    """The visual analyses ``config.analysis`` asks for, written into ``artifact_dir`` (their files)."""
    chosen = config.analysis
    added = Added()
    if chosen.umap is None and chosen.distance is None:
        return added
    datasets = _Datasets(config, output)
    artifact_dir = Path(artifact_dir)
    artifact_dir.mkdir(parents=True, exist_ok=True)
    if chosen.umap is not None:
        added.files.extend(umap_views(datasets, chosen.umap, artifact_dir))
    if chosen.distance is not None:
        added.files.extend(distance_views(datasets, chosen.distance, artifact_dir))
    return added


# ---------------------------------------------------------------------------------------------------
# UMAP map and missed features


def umap_views(datasets: _Datasets, opts: UmapConfig, out: Path) -> list[Path]:
    reference, candidate = datasets.side("reference"), datasets.side("candidate")
    sides = [reference, candidate] + [datasets.extra(spec) for spec in opts.datasets]
    k = opts.nearest_k
    missed = em.missed_features(
        reference.embeddings.features, candidate.embeddings.features, nearest_k=k, device=datasets.device
    )

    frames = []
    for side in sides:
        emb = side.embeddings
        frame = pd.DataFrame(
            {
                "label": side.label,
                "dataset": side.name,
                "role": side.role,
                "relpath": emb.ids,
                "image_id": emb.hashes,
                "root": str(emb.root),
                "status": "",
                "note": "",
            }
        )
        if side.role == "reference":
            frame.loc[missed.reference[em.MISSED].to_numpy(), ["status", "note"]] = [em.MISSED, em.MISSED_NOTE]
        elif side.role == "candidate":
            frame.loc[missed.candidate[em.FAR].to_numpy(), ["status", "note"]] = [em.FAR, em.FAR_NOTE]
        frames.append(frame)
    points = pd.concat(frames, ignore_index=True)
    features = np.concatenate([side.embeddings.features for side in sides])

    dims = sorted(set(opts.dims or (2, 3)))
    coords = {
        d: em.umap_coordinates(
            features,
            d,
            n_neighbors=opts.n_neighbors,
            min_dist=float(opts.min_dist),
            metric=opts.metric,
            seed=opts.seed,
            cache_dir=datasets.config.cache_dir,
        )
        for d in dims
    }
    for d, xyz in coords.items():
        for axis, name in enumerate("xyz"[:d]):
            points[f"umap{d}_{name}"] = xyz[:, axis]
    coord_columns = [c for c in points.columns if c.startswith("umap")]

    files = []
    n_ref, n_cand = len(reference.embeddings), len(candidate.embeddings)
    is_ref = (points["role"] == "reference").to_numpy()
    is_cand = (points["role"] == "candidate").to_numpy()
    ids = ["relpath", "image_id"]
    ref_table = pd.concat([points.loc[is_ref, ids].reset_index(drop=True), missed.reference], axis=1)
    ref_table["nearest_candidate"] = [candidate.embeddings.ids[i] for i in ref_table["nearest_candidate"]]
    ref_table = pd.concat([ref_table, points.loc[is_ref, coord_columns].reset_index(drop=True)], axis=1)
    cand_table = pd.concat([points.loc[is_cand, ids].reset_index(drop=True), missed.candidate], axis=1)
    cand_table["nearest_reference"] = [reference.embeddings.ids[i] for i in cand_table["nearest_reference"]]
    cand_table = pd.concat([cand_table, points.loc[is_cand, coord_columns].reset_index(drop=True)], axis=1)
    missed_rows = (
        ref_table[ref_table[em.MISSED]].drop(columns=[em.MISSED]).sort_values("reach", ascending=False, kind="stable")
    )
    far_rows = (
        cand_table[cand_table[em.FAR]].drop(columns=[em.FAR]).sort_values("reach", ascending=False, kind="stable")
    )
    for name, table in (
        ("umap_points.csv", points.drop(columns=["label", "note"])),
        ("missed_reference.csv", missed_rows),
        ("far_candidate.csv", far_rows),
    ):
        atomic_write_text(out / name, table.to_csv(index=False))
        files.append(out / name)

    header = datasets.header
    summary = (
        f"{header}. Reference {reference.name}: {n_ref} images, {len(missed_rows)} missed (no candidate within "
        f"their k-NN radius, k = {k}). Candidate {candidate.name}: {n_cand} images, {len(far_rows)} far "
        f"(outside every reference image's k-NN ball). Distances in feature space, not on the map. "
        f"UMAP: n_neighbors = {opts.n_neighbors}, min_dist = {opts.min_dist}, "
        f"metric = {opts.metric}, seed = {opts.seed}."
    )
    keep = em.thumbnail_budget(points, opts.max_thumbnails, seed=opts.seed)
    size = opts.thumbnail
    thumbnails: list[str | None] = [None] * len(points)
    for i in keep:
        thumbnails[i] = em.thumbnail_data_uri(image_path(points["root"].iat[i], points["relpath"].iat[i]), size)
    files.append(
        em.write_html(out / "umap.html", points, coords, thumbnails, title=f"UMAP map — {header}", summary=summary)
    )
    for d, xyz in coords.items():
        files.append(
            em.write_png(
                out / f"umap_{d}d.png",
                points,
                xyz,
                title=f"{d}-D UMAP — {header}\n{len(missed_rows)}/{n_ref} reference missed, "
                f"{len(far_rows)}/{n_cand} candidates far (k = {k})",
            )
        )
    grid_max = opts.grid_max
    files.append(
        em.thumbnail_grid(
            out / "missed_reference.png",
            missed_rows,
            reference.embeddings.root,
            title=f"{reference.name}: {len(missed_rows)} reference images no candidate of "
            f"{candidate.name} comes within their k-NN radius (k = {k}), "
            "most distant first",
            caption="reach",
            max_images=grid_max,
        )
    )
    files.append(
        em.thumbnail_grid(
            out / "far_candidate.png",
            far_rows,
            candidate.embeddings.root,
            title=f"{candidate.name}: {len(far_rows)} candidates outside every k-NN ball of "
            f"{reference.name} (k = {k}), most distant first",
            caption="reach",
            max_images=grid_max,
        )
    )
    return files


# ---------------------------------------------------------------------------------------------------
# dataset-distance views


def _i_dist(datasets: _Datasets, reference: Side, candidate: Side, n_components: int) -> np.ndarray:
    """I_dist of ``candidate``'s images: the cell's own ``odist`` table when it matches, else computed."""
    metric, tables = datasets.config.metric, datasets.output.tables
    if candidate.role == "candidate" and metric.name == "odist":
        params = metric.params
        table = tables.get("per_image_candidate")
        if (
            table is not None
            and "i_dist" in table.columns
            and int(params.get("n_components", 25)) == n_components
            and list(table["relpath"]) == list(candidate.embeddings.ids)
        ):
            return table["i_dist"].to_numpy(dtype=np.float64)
    from dsim.metrics import odist

    values = odist(
        reference.embeddings.features, candidate.embeddings.features, n_components=n_components, device=datasets.device
    )
    return np.asarray(values.per_image["candidate"]["i_dist"], dtype=np.float64)


def distance_views(datasets: _Datasets, opts: DistanceConfig, out: Path) -> list[Path]:
    reference = datasets.side("reference")
    candidates = [datasets.side("candidate")] + [datasets.extra(spec) for spec in opts.candidates]
    n_components = opts.n_components
    frames: list[pd.DataFrame] = []
    for side in candidates:
        if any(side.name == f["dataset"].iat[0] for f in frames):
            continue  # the same dataset named twice
        emb = side.embeddings
        i_dist = _i_dist(datasets, reference, side, n_components)
        frames.append(
            pd.DataFrame(
                {
                    "reference": reference.name,
                    "dataset": side.name,
                    "relpath": emb.ids,
                    "image_id": emb.hashes,
                    "i_dist": i_dist,
                }
            )
        )
    frame = dv.with_splits(pd.concat(frames, ignore_index=True))
    if opts.score_file:
        scores = dv.read_score_file(opts.score_file, opts.score_column)
        if "dataset" not in scores.columns:  # a plain relpath,score file scores the cell's candidate
            scores["dataset"] = candidates[0].name
        frame = dv.with_moving_average(dv.with_scores(frame, scores, source=f"score file {opts.score_file}"))
    return write_distance_files(
        frame, out, title=f"I_dist to {reference.name} ({datasets.extractor.name}, PCA {n_components})", suffix=""
    )


def write_distance_files(frame: pd.DataFrame, out: Path, *, title: str, suffix: str) -> list[Path]:
    """``distance_per_image{suffix}.csv``, ``distance_splits{suffix}.csv``, the violin and score figures."""
    files = []
    tables = ((f"distance_per_image{suffix}.csv", frame), (f"distance_splits{suffix}.csv", dv.split_table(frame)))
    for name, table in tables:
        atomic_write_text(out / name, table.to_csv(index=False))
        files.append(out / name)
    groups = {name: group["i_dist"].to_numpy() for name, group in frame.groupby("dataset", sort=False)}
    files.append(dv.violin_png(out / f"distance_violin{suffix}.png", groups, title=title))
    if "score" in frame.columns and frame["score"].notna().any():
        files.append(dv.score_png(out / f"distance_score{suffix}.png", frame, title=f"score vs {title}"))
    return files


# ---------------------------------------------------------------------------------------------------
# sweep level


def sweep_distance_frame(sweep_dir: Path) -> pd.DataFrame:
    """Every cell's per-image I_dist in a sweep: extractor, extractor_identity, reference, dataset, relpath, ..."""
    frames, seen = [], set()
    for result in sorted(Path(sweep_dir).rglob(RESULT_FILE)):
        record = CellRecord.from_json(json.loads(result.read_text()))
        artifacts = result.parent / ARTIFACT_DIR
        own = artifacts / "distance_per_image.csv"
        if own.exists():
            table = pd.read_csv(own)
        elif record.metric == "odist" and (artifacts / "per_image_candidate.csv").exists():
            table = pd.read_csv(artifacts / "per_image_candidate.csv")
            if "i_dist" not in table.columns:
                continue
            table = table[["relpath", "image_id", "i_dist"]].assign(
                reference=record.reference.name, dataset=record.candidate.name
            )
        else:
            continue
        table = table.assign(extractor=record.extractor, extractor_identity=record.extractor_identity)
        for dataset, group in table.groupby("dataset", sort=False):
            key = (record.extractor_identity, group["reference"].iat[0], dataset)
            if key not in seen:  # the same candidate in several cells (other metrics): keep the first
                seen.add(key)
                frames.append(group)
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def sweep_views(sweep_dir: Path, out_dir: Path) -> list[Path]:
    """Violin, split table and score figure per extractor × reference, across the sweep's cells."""
    frame = sweep_distance_frame(sweep_dir)
    if frame.empty:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    keep = [c for c in frame.columns if c not in ("i_dist_scaled", "rank", "half", "third", "score_moving_average")]
    groups = list(frame[keep].groupby(["extractor_identity", "reference"], sort=False))
    for (_, reference), group in groups:
        extractor = group["extractor"].iat[0]
        group = dv.with_splits(group.reset_index(drop=True))
        if "score" in group.columns:
            group = dv.with_moving_average(group)
        suffix = "" if len(groups) == 1 else f"_{_slug(extractor)}_{_slug(reference)}"
        files += write_distance_files(
            group, out_dir, title=f"I_dist to {reference} ({extractor}), across the sweep", suffix=suffix
        )
    return files


def sweep_visual_analysis(sweep_dir: Path, config) -> tuple[dict, list]:
    """:func:`sweep_views` when the sweep asks for ``analysis.distance``: (metrics, [(file, artifact folder)])."""
    if not (config.get("analysis") or {}).get("distance"):
        return {}, []
    out_dir = Path(sweep_dir) / SWEEP_DIR
    return guarded("sweep visual analysis", out_dir, lambda: ({}, sweep_views(Path(sweep_dir), out_dir)))
