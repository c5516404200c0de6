"""Will my model transfer? A downstream score against each image's distance from the reference (``analysis=transfer``).

The reference paper on dataset distances trains a model on a primary set P and finds its score on an image of an
unseen set S falling as the image's distance from P grows. Given the scores (``analysis.transfer.scores``, a CSV),
a cell measures that relation on its pair (P = the reference, S = the candidate). The distance is I_dist, the
PCA distance of metric ``odist`` (:mod:`dsim.analysis.distance_views`; the cell's own ``odist`` table when it
has one).

**Score files.** ``image,score``: one score per image, the image named by its path relative to the dataset
folder, else its file stem (a stem several images share is not guessed: such rows are counted in a warning),
else its content SHA-256 (the hash dsim lists every file by); an optional ``dataset`` column keeps the rows of
the cell's candidate. Rows that name no image are counted in one warning; duplicates of an image: the last row
wins. ``dataset,score``: one score per dataset, for a sweep over candidate datasets (:func:`sweep_transfer`).

**Statistics** (:func:`statistics`, keys of :data:`PREFIX` ``transfer_`` in the record):

- ``pearson``, ``spearman``, ``kendall``: Pearson r, Spearman ρ and Kendall τ-b of (distance, score), computed
  by ``scipy.stats`` (``pearsonr``, ``spearmanr``, ``kendalltau``); undefined (left out) with fewer than 3
  pairs or a constant series;
- ``slope`` (and ``intercept``): ordinary least squares of the score on the min-max-scaled distance (0 = the
  image nearest to P, 1 = the farthest); a flat line is the paper's "generalises";
- ``<name>_ci_low``, ``<name>_ci_high``: the 95 % interval of each coefficient and of the slope by the
  project's resampling method (:func:`dsim.metrics.bootstrap.bootstrap_intervals`: half-samples of the pairs
  without replacement, rate-corrected, median-centred; ``analysis.transfer.bootstrap`` replicates, seeded);
  it needs 6 pairs (half-samples of 3);
- ``<name>_p``: the two-sided permutation p-value of each coefficient: the share of score permutations whose
  coefficient is at least as far from 0 as the observed one, ``(count + 1) / (permutations + 1)`` over
  ``analysis.transfer.permutations`` seeded random permutations, or exact (``count / n!``, every permutation,
  the identity included) when n! is not more than that number. The slope's p-value is Pearson's (under
  permutation the slope is r times a constant);
- ``n``: the pairs; ``unmatched``: score rows that named no image;
- ``half_<k>_score_mean``, ``third_<k>_score_mean``: the mean score of each half / third of the candidate's
  images sorted by distance (k = 1: the nearest part).

**Files** (``<job>/artifacts/transfer/``): ``transfer.csv`` (a row per scored image: image, image_id, distance,
distance_scaled, score, half, third, moving_average), ``transfer_splits.csv`` (halves and thirds: n, distance
statistics, score mean and std, as :func:`~dsim.analysis.distance_views.split_table`) and ``transfer.png``
(the points; the fit and its pointwise 95 % band where :func:`~dsim.analysis.plots.no_fit_reason` allows a
line; the moving average with window ``max(1, floor(|S| / 10))``, as the paper's). Undefined statistics are
left out of the record, with a caveat saying why.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dsim.analysis import distance_views as dv
from dsim.analysis import plots
from dsim.cell.context import Added
from dsim.configs import CellConfig
from dsim.data.naming import match_images
from dsim.errors import DsimError
from dsim.metrics import MetricWarning
from dsim.util.fileio import atomic_write_text

#: the prefix of the record's transfer values (``transfer_spearman``)
PREFIX = "transfer_"
OPTION = "analysis.transfer.scores"
#: the correlation coefficients, in the order they are shown
CORRELATIONS = ("pearson", "spearman", "kendall")
#: values with an interval and (the coefficients) a p-value
INTERVAL_KEYS = (*CORRELATIONS, "slope")
FOLDER = "transfer"
POINTS_FILE = "transfer.csv"
SPLITS_FILE = "transfer_splits.csv"
FIGURE_FILE = "transfer.png"
DATASETS_FILE = "transfer_datasets.csv"
STATISTICS_FILE = "transfer_statistics.csv"
#: the scaled distances the fit's band is computed at
BAND = np.linspace(0.0, 1.0, 21)
#: the fewest pairs a coefficient is defined for, and an interval (half-samples of 3 pairs)
MIN_PAIRS, MIN_INTERVAL_PAIRS = 3, 6
#: the columns that name an image in a per-image score file (``relpath`` as in analysis.distance's file)
IMAGE_COLUMNS = ("image", "relpath")
#: floats of permuted scores held at once (32 MiB): the permutations are scored in chunks of this / n
_CHUNK_FLOATS = 1 << 22


# ---------------------------------------------------------------------------------------------------
# statistics


def coefficients(distance, score) -> dict[str, float]:
    """Pearson r, Spearman ρ and Kendall τ-b of the pairs, as ``scipy.stats`` computes them; NaN with fewer than
    :data:`MIN_PAIRS` pairs or a constant series.

    >>> {k: round(v, 3) for k, v in coefficients([1, 2, 3, 4], [0.9, 0.7, 0.8, 0.1]).items()}
    {'pearson': -0.826, 'spearman': -0.8, 'kendall': -0.667}
    """
    from scipy import stats

    x, y = np.asarray(distance, dtype=np.float64), np.asarray(score, dtype=np.float64)
    if len(x) < MIN_PAIRS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return dict.fromkeys(CORRELATIONS, float("nan"))
    return {
        "pearson": float(stats.pearsonr(x, y).statistic),
        "spearman": float(stats.spearmanr(x, y).statistic),
        "kendall": float(stats.kendalltau(x, y).statistic),
    }


def least_squares(x, y) -> tuple[float, float]:
    """``(slope, intercept)`` of the ordinary least-squares line of ``y`` on ``x`` (NaN when ``x`` is constant)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0:
        return float("nan"), float("nan")
    dx = x - x.mean()
    slope = float(dx @ (y - y.mean()) / (dx @ dx))
    return slope, float(y.mean() - slope * x.mean())


def _estimates(pairs: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """The coefficients, the line and the line's height at :data:`BAND` of ``pairs`` (distance, scaled distance)."""
    out = coefficients(pairs[:, 0], score)
    slope, intercept = least_squares(pairs[:, 1], score)
    out.update(slope=slope, intercept=intercept)
    out.update({f"band_{i}": intercept + slope * x for i, x in enumerate(BAND)})
    return out


def permutation_pvalues(distance, score, *, permutations: int, seed: int = 0) -> dict[str, float]:
    """Two-sided permutation p-values ``{pearson, spearman, kendall}``: the share of permutations of ``score``
    whose coefficient is at least as far from 0 as the observed one. ``permutations`` seeded random ones give
    ``(count + 1) / (permutations + 1)``; when n! is not more than ``permutations``, every permutation is scored
    (the identity too) and the p-value is exact, ``count / n!``. NaN where a coefficient is undefined."""
    from scipy import stats

    x, y = np.asarray(distance, dtype=np.float64), np.asarray(score, dtype=np.float64)
    observed = coefficients(x, y)
    n = len(x)
    if not permutations or not np.isfinite(observed["pearson"]):
        return dict.fromkeys(CORRELATIONS, float("nan"))
    exact = n <= 12 and math.factorial(n) <= permutations
    total = math.factorial(n) if exact else int(permutations)
    orders = _orders(n, exact=exact, permutations=total, seed=seed)
    standard = {"pearson": _standardised(x), "spearman": _standardised(stats.rankdata(x))}
    others = {"pearson": _standardised(y), "spearman": _standardised(stats.rankdata(y))}
    hits = dict.fromkeys(CORRELATIONS, 0)
    for chunk in orders:
        for name in ("pearson", "spearman"):
            drawn = others[name][chunk] @ standard[name]
            hits[name] += int(np.sum(np.abs(drawn) >= _threshold(observed[name])))
        for order in chunk:
            tau = stats.kendalltau(x, y[order]).statistic
            hits["kendall"] += int(abs(tau) >= _threshold(observed["kendall"]))
    if exact:
        return {name: hits[name] / total for name in CORRELATIONS}
    return {name: (hits[name] + 1) / (total + 1) for name in CORRELATIONS}


def _standardised(values) -> np.ndarray:
    centred = np.asarray(values, dtype=np.float64) - np.mean(values)
    return centred / np.sqrt(centred @ centred)


def _threshold(observed: float) -> float:
    """|coefficient| a permutation must reach: the observed one, less rounding (ties with it count)."""
    return abs(observed) * (1 - 1e-12) - 1e-14


def _orders(n: int, *, exact: bool, permutations: int, seed: int):
    """Chunks of permutations of ``range(n)`` (arrays of shape (k, n)): all of them, or seeded random ones."""
    size = max(1, min(256, _CHUNK_FLOATS // max(1, n)))  # the chunking never changes which permutations
    if exact:
        every = itertools.permutations(range(n))
        while chunk := list(itertools.islice(every, size)):
            yield np.asarray(chunk, dtype=np.int64)
        return
    rng = np.random.default_rng(seed)
    for start in range(0, permutations, size):
        yield np.stack([rng.permutation(n) for _ in range(min(size, permutations - start))])


@dataclass
class Transfer:
    """The statistics of one set of (distance, score) pairs: ``values`` (``pearson``, ``pearson_ci_low``, ...,
    ``slope``, ``n``; NaN where undefined) and the fit's pointwise band at :data:`BAND` (``band_low``,
    ``band_high``; NaN without intervals)."""

    values: dict[str, float]
    band_low: np.ndarray = field(default_factory=lambda: np.full(len(BAND), np.nan))
    band_high: np.ndarray = field(default_factory=lambda: np.full(len(BAND), np.nan))

    def record_values(self, prefix: str = PREFIX) -> dict[str, float]:
        """The defined values, keyed ``<prefix><name>`` (an undefined statistic is left out of a record)."""
        return {prefix + k: float(v) for k, v in self.values.items() if np.isfinite(v)}


def statistics(
    distance, score, *, scaled=None, bootstrap: int = 1000, permutations: int = 1000, seed: int = 0, label: str = ""
) -> Transfer:
    """Coefficients, slope, intervals and p-values of ``score`` against ``distance`` (finite pairs only).

    ``scaled``: the min-max-scaled distance the slope is fitted on (default: ``distance`` scaled over these
    pairs). Caveats (too few pairs, undefined half-samples) are :class:`~dsim.metrics.MetricWarning` s naming
    ``label``.

    >>> rng = np.random.default_rng(0)
    >>> d = rng.uniform(size=40)
    >>> result = statistics(d, 1 - d + rng.normal(0, 0.1, 40), bootstrap=50, permutations=99)
    >>> v = result.values
    >>> v["spearman_ci_low"] <= v["spearman"] <= v["spearman_ci_high"] < 0, v["spearman_p"] == 1 / 100
    (True, True)
    """
    from dsim.metrics.bootstrap import bootstrap_intervals, interval_keys

    x = np.asarray(distance, dtype=np.float64)
    y = np.asarray(score, dtype=np.float64)
    s = dv.min_max(x) if scaled is None else np.asarray(scaled, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(s)
    x, y, s = x[keep], y[keep], s[keep]
    n = len(x)
    where = f"{label}: " if label else ""
    pairs = np.column_stack([x, s])
    estimate = _estimates(pairs, y)
    values = {k: v for k, v in estimate.items() if not k.startswith("band_")}
    values["n"] = float(n)
    result = Transfer(values)
    if n < MIN_PAIRS or not np.isfinite(values["pearson"]):
        why = f"{n} scored image(s)" if n < MIN_PAIRS else "the distance or the score is the same for every image"
        warnings.warn(
            f"{where}no correlation: {why} (a coefficient needs {MIN_PAIRS} pairs with varying values)",
            MetricWarning,
            stacklevel=2,
        )
    undefined = [0]

    def replicate(p: np.ndarray, q: np.ndarray) -> dict[str, float]:
        out = _estimates(p, q)
        undefined[0] += int(not np.isfinite(out["pearson"]))
        return out

    for name in INTERVAL_KEYS:
        values.update(dict.fromkeys(interval_keys(name), float("nan")))
    if bootstrap and n >= MIN_INTERVAL_PAIRS:
        ranges = {name: (-1.0, 1.0) for name in CORRELATIONS}
        ci = bootstrap_intervals(
            replicate, pairs, y, replicates=bootstrap, seed=seed, paired=True, estimate=estimate, ranges=ranges
        )
        values.update({k: v for k, v in ci.items() if not k.startswith("band_")})
        result.band_low = np.array([ci[f"band_{i}_ci_low"] for i in range(len(BAND))])
        result.band_high = np.array([ci[f"band_{i}_ci_high"] for i in range(len(BAND))])
        if undefined[0] and np.isfinite(values["pearson"]):
            warnings.warn(
                f"{where}{undefined[0]} of {bootstrap} half-samples had one distance or one score only; the "
                "coefficients' intervals use the others",
                MetricWarning,
                stacklevel=2,
            )
    elif bootstrap:
        warnings.warn(
            f"{where}no intervals: {n} scored image(s), half-samples need {MIN_INTERVAL_PAIRS}",
            MetricWarning,
            stacklevel=2,
        )
    p = permutation_pvalues(x, y, permutations=permutations, seed=seed)
    values.update({f"{name}_p": p[name] for name in CORRELATIONS})
    values["slope_p"] = p["pearson"]
    return result


# ---------------------------------------------------------------------------------------------------
# score files


@dataclass(frozen=True)
class Scores:
    """A score file read: ``kind`` ``image`` (columns image, score[, dataset]) or ``dataset`` (dataset, score)."""

    kind: str
    table: pd.DataFrame
    path: Path


def read_scores(path, column: str = "score") -> Scores:
    """The score file ``path`` (see the module's docs); a missing or unreadable file, a missing column or no
    numeric score at all is a one-line :class:`~dsim.errors.DsimError`."""
    path = Path(path).expanduser()
    table = dv.read_csv_file(path, option=OPTION)
    columns = [str(c) for c in table.columns]
    expected = f"expected image,{column} (a score per image) or dataset,{column} (a score per dataset)"
    image = next((c for c in IMAGE_COLUMNS if c in columns), None)
    if column not in columns or (image is None and "dataset" not in columns):
        missing = column if column not in columns else "image"
        raise DsimError(f"{OPTION}: {path} has no column {missing!r} (columns: {', '.join(columns)}); {expected}")
    out = pd.DataFrame({"score": pd.to_numeric(table[column], errors="coerce")})
    for name, source in (("image", image), ("dataset", "dataset" if "dataset" in columns else None)):
        if source is not None:
            out[name] = table[source].astype(str).str.strip()
    if not np.isfinite(out["score"].to_numpy(dtype=np.float64)).any():
        raise DsimError(f"{OPTION}: {path} has no numeric value in column {column!r}")
    return Scores("image" if image else "dataset", out, path)


def candidate_names(config: CellConfig, output) -> set[str]:
    """What a score file's ``dataset`` column may call the cell's candidate: its name, the spec as given, the
    folder's path and name."""
    spec = str(config.pair.candidate)
    root = Path(output.candidate.root)
    return {output.candidate.name, spec, Path(spec).name, str(root), root.name, str(root.resolve())}


# ---------------------------------------------------------------------------------------------------
# the cell step


def check(config: CellConfig) -> None:
    """``analysis.transfer``'s mistakes before any work: no score file, or one that cannot be used."""
    opts = config.analysis.transfer
    if opts is None:
        return
    if not opts.scores:
        raise DsimError(
            f"{OPTION}: analysis=transfer needs a score file: {OPTION}=FILE, a CSV image,score (per image) or "
            "dataset,score (per dataset)"
        )
    read_scores(opts.scores, opts.score_column)
    if opts.distance == "metric":
        metric_column(config)


def transfer_analysis(config: CellConfig, output, artifact_dir: Path) -> Added:
    """``analysis=transfer`` on a cell's output: the values and files of the module's docs."""
    opts = config.analysis.transfer
    if opts is None or not opts.scores:
        return Added()
    from dsim.analysis import visual

    scores = read_scores(opts.scores, opts.score_column)
    datasets = visual._Datasets(config, output)
    reference, candidate = datasets.side("reference"), datasets.side("candidate")
    if opts.distance == "metric":
        column, images = metric_distances(config, output)
    else:
        column = "I_dist"
        images = pd.DataFrame(
            {
                "relpath": candidate.embeddings.ids,
                "image_id": candidate.embeddings.hashes,
                "i_dist": visual._i_dist(datasets, reference, candidate, opts.n_components),
            }
        )
    distance = images["i_dist"].to_numpy(dtype=np.float64)
    names = candidate_names(config, output)
    out = Path(artifact_dir) / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    if scores.kind == "dataset":
        return _dataset_point(config, output, scores, distance, names, out)
    frame = dv.with_splits(images.assign(dataset=candidate.name))
    frame["score"], unmatched = _image_scores(scores, names, frame)
    scored = frame[frame["score"].notna()].sort_values("i_dist", kind="stable")
    title = f"{datasets.header} ({column}{f', PCA {opts.n_components}' if column == 'I_dist' else ''})"
    result = statistics(
        scored["i_dist"],
        scored["score"],
        scaled=scored["i_dist_scaled"],
        bootstrap=opts.bootstrap,
        permutations=opts.permutations,
        seed=opts.seed,
        label=f"analysis.transfer ({candidate.name})",
    )
    result.values["unmatched"] = float(unmatched)
    points = pd.DataFrame(
        {
            "image": scored["relpath"],
            "image_id": scored["image_id"],
            "distance": scored["i_dist"],
            "distance_scaled": scored["i_dist_scaled"],
            "score": scored["score"],
            "half": scored["half"],
            "third": scored["third"],
            "moving_average": dv.moving_average(scored["score"], dv.score_window(len(scored))),
        }
    )
    splits = dv.split_table(frame)
    for scheme, (column, _) in dv.SCHEMES.items():
        for _, row in splits[splits["scheme"] == scheme].iterrows():
            result.values[f"{column}_{int(row['split'])}_score_mean"] = float(row["score_mean"])
    files = []
    for name, table in ((POINTS_FILE, points), (SPLITS_FILE, splits)):
        atomic_write_text(out / name, table.to_csv(index=False))
        files.append(out / name)
    panel = Panel(candidate.name, points["distance_scaled"].to_numpy(), points["score"].to_numpy(), result)
    files.append(transfer_png(out / FIGURE_FILE, [panel], title=f"score vs distance — {title}"))
    return Added(values=result.record_values(), files=files)


def metric_column(config: CellConfig) -> str:
    """The cell metric's per-image candidate distance column (``transport_cost``, ``i_dist``, ...), or an error
    when it has none (``analysis.transfer.distance=metric``)."""
    from dsim.metrics import lookup

    spec = lookup(config.metric.name)
    columns = spec.per_image.get("candidate", ())
    if not columns:
        raise DsimError(
            f"analysis.transfer.distance=metric: metric {spec.name} gives no per-image distance of the candidate's "
            "images; use emd, sinkhorn, sliced_wasserstein, otdd, odist or prdc, or distance=i_dist"
        )
    return columns[0]


def metric_distances(config: CellConfig, output) -> tuple[str, pd.DataFrame]:
    """``analysis.transfer.distance=metric``: the cell metric's per-image candidate distance as a frame
    ``relpath, image_id, i_dist``, and the column's name. Only the images the metric saw are there (a
    ``max_samples`` sample)."""
    column = metric_column(config)
    table = output.tables["per_image_candidate"]
    return column, table[["relpath", "image_id"]].assign(i_dist=table[column].to_numpy(dtype=np.float64))


def _image_scores(scores: Scores, names: set[str], frame: pd.DataFrame) -> tuple[np.ndarray, int]:
    """Each image's score (NaN: none) and the number of rows that named no image, with the caveats."""
    table = scores.table
    where = f"{OPTION} {scores.path}"
    if "dataset" in table.columns:
        mine = table["dataset"].isin(names)
        if not mine.any():
            raise DsimError(
                f"{where}: no row's dataset is the candidate {sorted(names)[0]!r} (datasets there: "
                f"{', '.join(sorted(table['dataset'].unique())[:5])})"
            )
        table = table[mine]
    found, ambiguous = match_images(table["image"].tolist(), frame["relpath"].tolist(), frame["image_id"].tolist())
    unmatched = int((found < 0).sum())
    if not (found >= 0).any():
        sample = ", ".join(map(str, frame["relpath"].head(3)))
        raise DsimError(
            f"{where}: none of its {len(table)} rows names an image of {frame['dataset'].iat[0]} (by path relative "
            f"to the dataset folder, file stem or content SHA-256; e.g. {sample})"
        )
    if unmatched:
        example = table["image"].to_numpy()[found < 0][0]
        note = f"; {ambiguous} of them a file stem several images share (give their paths)" if ambiguous else ""
        warnings.warn(
            f"{where}: {unmatched} of its {len(table)} rows name no image of the candidate and are ignored (e.g. "
            f"{example!r}; images are named by path relative to the dataset folder, file stem or content "
            f"SHA-256){note}",
            MetricWarning,
            stacklevel=3,
        )
    values = np.full(len(frame), np.nan)
    rows = found >= 0
    duplicates = int(rows.sum() - len(np.unique(found[rows])))
    values[found[rows]] = table["score"].to_numpy(dtype=np.float64)[rows]  # the last row of an image wins
    if duplicates:
        warnings.warn(
            f"{where}: {duplicates} row(s) score an image another row scores too; the last one is used",
            MetricWarning,
            stacklevel=3,
        )
    no_number = int((rows & ~np.isfinite(table["score"].to_numpy(dtype=np.float64))).sum())
    if no_number:
        warnings.warn(f"{where}: {no_number} matched row(s) have no numeric score", MetricWarning, stacklevel=3)
    return values, unmatched


def _dataset_point(config, output, scores: Scores, distance: np.ndarray, names: set[str], out: Path) -> Added:
    """A per-dataset score file in a cell: the candidate's score and its mean I_dist, for the sweep."""
    table = scores.table[scores.table["dataset"].isin(names) & scores.table["score"].notna()]
    if table.empty:
        warnings.warn(
            f"{OPTION} {scores.path}: no score for the candidate {output.candidate.name!r}; the cell has no "
            "transfer point",
            MetricWarning,
            stacklevel=3,
        )
        return Added()
    if len(table) > 1:
        warnings.warn(
            f"{OPTION} {scores.path}: {len(table)} rows score {output.candidate.name!r}; the last one is used",
            MetricWarning,
            stacklevel=3,
        )
    score = float(table["score"].iat[-1])
    mean = float(np.mean(distance))
    metric = config.metric.name
    point = {
        "dataset": output.candidate.name,
        "reference": output.reference.name,
        "distance": mean,
        "n_images": len(distance),
        "metric": metric,
        "metric_value": output.values.get(metric, float("nan")),
        "score": score,
    }
    atomic_write_text(out / POINTS_FILE, pd.DataFrame([point]).to_csv(index=False))
    values = {f"{PREFIX}score": score, f"{PREFIX}distance": mean}
    return Added(values=values, files=[out / POINTS_FILE])


# ---------------------------------------------------------------------------------------------------
# the sweep


def sweep_points(records: list[dict]) -> pd.DataFrame:
    """One row per (series, reference, dataset) of the sweep's cells with a per-dataset score: ``series``
    (``<extractor>.i_dist``: the mean I_dist, and ``<extractor>.<metric>``: the cell's metric value),
    reference, dataset, distance, score. A dataset seen in several cells of a series keeps its first."""
    from dsim.analysis.sweep import series_name
    from dsim.records import CellRecord

    rows = []
    for record in map(CellRecord.from_json, records):
        score = record.values.get(f"{PREFIX}score")
        if score is None or not np.isfinite(score):
            continue
        base = {
            "extractor": record.extractor,
            "reference": record.reference.name,
            "dataset": record.candidate.name,
            "score": float(score),
        }
        distance = record.values[f"{PREFIX}distance"]
        rows.append({"series": f"{record.extractor}.i_dist", "measure": "i_dist", **base, "distance": distance})
        value = record.values.get(record.metric)
        if value is not None and np.isfinite(value):
            series = series_name(record.extractor, record.metric)
            rows.append({"series": series, "measure": record.metric, **base, "distance": float(value)})
    columns = ["series", "extractor", "measure", "reference", "dataset", "distance", "score"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.drop_duplicates(["series", "reference", "dataset"], keep="first").reset_index(drop=True)


def sweep_transfer(records: list[dict], out_dir: Path, opts: Mapping) -> tuple[dict[str, float], list[Path]]:
    """Across the sweep's candidate datasets: the score against each series' distance (:func:`sweep_points`),
    with :func:`statistics` per series × reference. Values ``<series>.transfer_spearman``, ... (the reference
    added, ``<series>.<reference>.``, when the sweep has several); files ``transfer_datasets.csv``,
    ``transfer_statistics.csv`` and ``transfer.png`` in ``out_dir``; and, with per-dataset or per-image
    scores, the series ranked (:mod:`dsim.analysis.transfer_ranking`: ``ranking.csv``, ``ranking.png``)."""
    from dsim.analysis import transfer_ranking as ranking

    points = sweep_points(records)
    out_dir = Path(out_dir)
    metrics, files, statistics_rows = _across_datasets(points, out_dir, opts) if not points.empty else ({}, [], [])
    table = ranking.ranking_table(ranking.dataset_rows(points, statistics_rows) + ranking.image_rows(records))
    if not table.empty:
        out_dir.mkdir(parents=True, exist_ok=True)
        files += ranking.write_ranking(table, out_dir)
        several = points["reference"].nunique() > 1
        for row in table[table["scores"] == "dataset"].itertuples():
            label = f"{row.series}.{row.reference}" if several else row.series
            for kind in ("rmse", "mae"):
                if np.isfinite(getattr(row, f"lodo_{kind}")):
                    metrics[f"{label}.{PREFIX}lodo_{kind}"] = float(getattr(row, f"lodo_{kind}"))
    return metrics, files


def _across_datasets(points: pd.DataFrame, out_dir: Path, opts: Mapping) -> tuple[dict, list[Path], list[dict]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    several = points["reference"].nunique() > 1
    metrics: dict[str, float] = {}
    rows, panels, frames = [], [], []
    for (series, reference), group in points.groupby(["series", "reference"], sort=True):
        group = group.assign(distance_scaled=dv.min_max(group["distance"]))
        frames.append(group)
        label = f"{series}.{reference}" if several else series
        result = statistics(
            group["distance"],
            group["score"],
            scaled=group["distance_scaled"],
            bootstrap=int(opts.get("bootstrap", 1000)),
            permutations=int(opts.get("permutations", 1000)),
            seed=int(opts.get("seed", 0)),
            label=f"sweep transfer ({label}, across datasets)",
        )
        metrics.update(result.record_values(f"{label}.{PREFIX}"))
        rows.append({"series": series, "reference": reference, **result.values})
        panels.append(Panel(label, group["distance_scaled"].to_numpy(), group["score"].to_numpy(), result))
    files = []
    for name, table in ((DATASETS_FILE, pd.concat(frames, ignore_index=True)), (STATISTICS_FILE, pd.DataFrame(rows))):
        atomic_write_text(out_dir / name, table.to_csv(index=False))
        files.append(out_dir / name)
    files.append(transfer_png(out_dir / FIGURE_FILE, panels, title="score vs distance across the sweep's datasets"))
    return metrics, files, rows


def sweep_transfer_analysis(records: list[dict], sweep_dir: Path, config: Mapping) -> tuple[dict, list]:
    """:func:`sweep_transfer` into ``<sweep_dir>/transfer`` when the sweep asks for ``analysis.transfer``:
    (metrics, [(file, artifact folder)])."""
    from dsim.analysis.sweep import guarded

    opts = (config.get("analysis") or {}).get("transfer")
    if not opts:
        return {}, []
    out_dir = Path(sweep_dir) / FOLDER
    return guarded("sweep transfer analysis", out_dir, lambda: sweep_transfer(records, out_dir, opts))


# ---------------------------------------------------------------------------------------------------
# the figure


@dataclass
class Panel:
    """One panel of :func:`transfer_png`: ``label``, scaled distances, scores and their :class:`Transfer`."""

    label: str
    scaled: np.ndarray
    score: np.ndarray
    result: Transfer


def _shown(values: dict, name: str, symbol: str) -> str:
    def fmt(v):
        return "undefined" if not np.isfinite(v) else f"{v:.3g}"

    text = f"{symbol} = {fmt(values[name])}"
    low, high = values.get(f"{name}_ci_low", np.nan), values.get(f"{name}_ci_high", np.nan)
    if np.isfinite(low) and np.isfinite(high):
        text += f" [{low:.3g}, {high:.3g}]"
    p = values.get(f"{name}_p", np.nan)
    return text + (f", p = {p:.3g}" if np.isfinite(p) else "")


def transfer_png(path: Path, panels: list[Panel], *, title: str) -> Path:
    """Score against min-max-scaled distance, a panel each: every point; the least-squares line and its pointwise
    95 % band where :func:`~dsim.analysis.plots.no_fit_reason` allows a line (else the panel says why); the
    moving average over the points sorted by distance (window ``max(1, floor(n / 10))``)."""
    return plots._save(transfer_figure(panels, title=title), path)


def transfer_figure(panels: list[Panel], *, title: str):
    """The matplotlib figure of :func:`transfer_png`."""
    columns = min(2, max(1, len(panels)))
    rows = math.ceil(max(1, len(panels)) / columns)
    fig = plots._figure(6.4 * columns, 4.8 * rows)
    fig.suptitle(title, fontsize=10)
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(rows, columns, i + 1)
        x, y, values = panel.scaled, panel.score, panel.result.values
        ax.scatter(x, y, s=14, alpha=0.65, color="tab:blue", linewidths=0, label=f"scores (n = {len(x)})")
        order = np.argsort(x, kind="stable")
        window = dv.score_window(len(x))
        if len(x):
            ax.plot(
                x[order],
                dv.moving_average(y[order], window),
                color="black",
                linewidth=1.4,
                label=f"moving average (window {window})",
            )
        reason = plots.no_fit_reason(x, y)
        if reason is None:
            slope, intercept = values["slope"], values["intercept"]
            ax.plot(BAND, intercept + slope * BAND, color="tab:red", linewidth=1.4, label="least-squares fit")
            band = panel.result
            if np.isfinite(band.band_low).all() and np.isfinite(band.band_high).all():
                ax.fill_between(BAND, band.band_low, band.band_high, color="tab:red", alpha=0.18, label="95 % band")
        else:
            plots.no_fit_note(ax, reason)
        ax.set_xlim(-0.03, 1.03)
        ax.set_xlabel("distance, min-max scaled (0 = nearest to the reference)")
        ax.set_ylabel("score")
        ax.set_title(
            f"{panel.label}\n{_shown(values, 'spearman', 'Spearman ρ')}; {_shown(values, 'pearson', 'r')}\n"
            f"{_shown(values, 'kendall', 'Kendall τ')}; {_shown(values, 'slope', 'slope')}",
            fontsize=8,
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    return fig


__all__ = [
    "CORRELATIONS",
    "PREFIX",
    "Panel",
    "Scores",
    "Transfer",
    "check",
    "coefficients",
    "least_squares",
    "match_images",
    "permutation_pvalues",
    "read_scores",
    "statistics",
    "sweep_transfer",
    "sweep_transfer_analysis",
    "transfer_analysis",
    "transfer_png",
]
