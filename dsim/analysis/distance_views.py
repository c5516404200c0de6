"""The dataset-distance views: I_dist per image, violins, sorted-distance splits, score curves.

I_dist(y) is the summed PCA-space distance from a candidate image y to every reference image (see
:mod:`dsim.metrics._odist`, metric ``odist``; O_dist is its mean). From a table of per-image I_dist
(columns ``dataset``, ``relpath``, ``i_dist``):

- :func:`with_splits` ranks each dataset's images by I_dist (rank 1 = nearest to the reference) and cuts
  the ranking into consecutive, near-equal parts: ``half`` (1-2) and ``third`` (1-3), 1 = the nearest part
  (sizes differ by at most one image, larger parts first, as ``numpy.array_split``); it adds
  ``i_dist_scaled``, I_dist min-max scaled to [0, 1] within the dataset.
- :func:`split_table`: per dataset, scheme (``halves``, ``thirds``) and part: n, I_dist min / max / mean /
  std (sample std, ddof = 1), and the score's mean / std when the table has a ``score`` column.
- :func:`with_scores` joins a per-image score file (CSV: ``relpath``, ``score``, optionally ``dataset``: in a
  cell, a file without ``dataset`` scores the cell's candidate);
  :func:`with_moving_average` adds the moving average of the score over the images sorted by I_dist,
  window ``max(1, floor(|S| / 10))`` with |S| the number of scored images, centred (shorter at the ends).
- :func:`violin_png`, :func:`score_png`: the figures (matplotlib, Agg); a dataset's violin has its colour of
  every figure (:mod:`dsim.analysis.palette`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from dsim.analysis import plots
from dsim.analysis.palette import dataset_colour
from dsim.errors import DsimError

SCHEMES = {"halves": ("half", 2), "thirds": ("third", 3)}
SPLIT_COLOURS = ("#2ca02c", "#ff7f0e", "#d62728")


def split_labels(values, parts: int) -> np.ndarray:
    """Part (1..``parts``) of each value once sorted ascending (stable): consecutive, near-equal parts."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.empty(len(values), dtype=np.int64)
    order = np.argsort(values, kind="stable")
    for part, rows in enumerate(np.array_split(order, parts), start=1):
        labels[rows] = part
    return labels


def min_max(values) -> np.ndarray:
    """``values`` scaled to [0, 1] (all 0 when they are all equal)."""
    values = np.asarray(values, dtype=np.float64)
    span = values.max() - values.min() if len(values) else 0.0
    return np.zeros_like(values) if span == 0 else (values - values.min()) / span


def with_splits(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (``dataset``, ``i_dist``, ...) plus ``i_dist_scaled``, ``rank``, ``half``, ``third`` per dataset."""
    parts = []
    for _, group in frame.groupby("dataset", sort=False):
        group = group.copy()
        d = group["i_dist"].to_numpy(dtype=np.float64)
        group["i_dist_scaled"] = min_max(d)
        group["rank"] = np.argsort(np.argsort(d, kind="stable"), kind="stable") + 1
        for column, n in SCHEMES.values():
            group[column] = split_labels(d, n)
        parts.append(group)
    return pd.concat(parts, ignore_index=True) if parts else frame.assign(i_dist_scaled=[], rank=[], half=[], third=[])


def split_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset × scheme × part: n, I_dist min/max/mean/std (and score mean/std when scored)."""
    scored = "score" in frame.columns
    rows = []
    for dataset, group in frame.groupby("dataset", sort=False):
        for scheme, (column, n) in SCHEMES.items():
            for part in range(1, n + 1):
                chunk = group[group[column] == part]
                row = {
                    "dataset": dataset,
                    "scheme": scheme,
                    "split": part,
                    "n": len(chunk),
                    "i_dist_min": chunk["i_dist"].min(),
                    "i_dist_max": chunk["i_dist"].max(),
                    "i_dist_mean": chunk["i_dist"].mean(),
                    "i_dist_std": chunk["i_dist"].std(ddof=1),
                }
                if scored:
                    score = chunk["score"].dropna()
                    row.update(n_scored=len(score), score_mean=score.mean(), score_std=score.std(ddof=1))
                rows.append(row)
    columns = ["dataset", "scheme", "split", "n", "i_dist_min", "i_dist_max", "i_dist_mean", "i_dist_std"]
    return pd.DataFrame(rows, columns=columns + (["n_scored", "score_mean", "score_std"] if scored else []))


# ---------------------------------------------------------------------------------------------------
# per-image scores


def read_score_file(path, column: str = "score") -> pd.DataFrame:
    """A per-image score file: CSV with ``relpath`` and ``column`` (and optionally ``dataset``) → relpath,
    score[, dataset]. A missing file or column is a one-line :class:`~dsim.errors.DsimError`."""
    path = Path(path).expanduser()
    table = read_csv_file(path, option="analysis.distance.score_file")
    missing = [c for c in ("relpath", column) if c not in table.columns]
    if missing:
        raise DsimError(
            f"analysis.distance.score_file: {path} has no column {', '.join(map(repr, missing))} "
            f"(columns: {', '.join(map(str, table.columns))}); expected relpath,{column}"
        )
    out = pd.DataFrame(
        {"relpath": table["relpath"].astype(str), "score": pd.to_numeric(table[column], errors="coerce")}
    )
    if "dataset" in table.columns:
        out["dataset"] = table["dataset"].astype(str)
    return out


def read_csv_file(path, *, option: str) -> pd.DataFrame:
    """The CSV file ``path`` that config key ``option`` names; a missing or unreadable file is a one-line
    :class:`~dsim.errors.DsimError` that names the key."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DsimError(f"{option}: no such file {path}")
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise DsimError(f"{option}: cannot read {path} as CSV: {error}".splitlines()[0]) from error


def with_scores(frame: pd.DataFrame, scores: pd.DataFrame, *, source: str = "score file") -> pd.DataFrame:
    """``frame`` plus a ``score`` column: matched by ``relpath`` (and ``dataset`` where the scores have one).

    Images without a score get NaN; score rows that match no image are counted in a warning (duplicates:
    the last row wins, also with a warning); scores that match no image of ``frame`` at all are an error.
    """
    keys = ["dataset", "relpath"] if "dataset" in scores.columns else ["relpath"]
    duplicated = int(scores.duplicated(keys, keep="last").sum())
    if duplicated:
        warnings.warn(
            f"{source}: {duplicated} duplicate row(s) for the same image; the last one of each is used", stacklevel=2
        )
    scores = scores.drop_duplicates(keys, keep="last")
    out = frame.drop(columns=["score"], errors="ignore").merge(scores[keys + ["score"]], on=keys, how="left")
    matched = scores.merge(frame[keys].drop_duplicates(), on=keys, how="inner")
    unmatched = len(scores) - len(matched)
    if unmatched and len(matched):
        example = scores.merge(frame[keys].drop_duplicates(), on=keys, how="left", indicator=True)
        first = example.loc[example["_merge"] == "left_only", "relpath"].iloc[0]
        warnings.warn(
            f"{source}: {unmatched} of its {len(scores)} rows match no image and are ignored (e.g. "
            f"{first!r}; relpaths are relative to the dataset folder)",
            stacklevel=2,
        )
    if out["score"].notna().sum() == 0:
        sample = ", ".join(map(str, frame["relpath"].head(3)))
        raise DsimError(
            f"{source}: none of its {len(scores)} rows matches an image of "
            f"{', '.join(map(str, frame['dataset'].unique()))} (relpaths are relative to the dataset "
            f"folder, e.g. {sample})"
        )
    return out


def moving_average(values, window: int) -> np.ndarray:
    """Centred moving average with ``window`` points (fewer at the ends)."""
    return pd.Series(np.asarray(values, dtype=np.float64)).rolling(window, center=True, min_periods=1).mean().to_numpy()


def score_window(n_scored: int) -> int:
    """The moving-average window for |S| scored images: max(1, floor(|S| / 10))."""
    return max(1, int(n_scored) // 10)


def with_moving_average(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``score_moving_average``: per dataset, over its scored images sorted by I_dist."""
    out = frame.copy()
    out["score_moving_average"] = np.nan
    for _, group in out.groupby("dataset", sort=False):
        scored = group[group["score"].notna()].sort_values("i_dist", kind="stable")
        if len(scored):
            out.loc[scored.index, "score_moving_average"] = moving_average(scored["score"], score_window(len(scored)))
    return out


# ---------------------------------------------------------------------------------------------------
# figures


def violin_png(path: Path, groups: dict[str, np.ndarray], *, title: str, ylabel: str = "I_dist") -> Path:
    """One violin per dataset (with its median and quartiles), ordered as given."""
    return plots._save(violin_figure(groups, title=title, ylabel=ylabel), path)


def violin_figure(groups: dict[str, np.ndarray], *, title: str, ylabel: str = "I_dist"):
    """The matplotlib figure of :func:`violin_png`: each dataset's violin in its colour
    (:func:`~dsim.analysis.palette.dataset_colour`, as on the UMAP map)."""
    names = list(groups)
    fig = plots._figure(max(4.5, 1.4 * len(names) + 2.0), 5.0)
    ax = fig.add_subplot(1, 1, 1)
    data = [np.asarray(groups[n], dtype=np.float64) for n in names]
    positions = np.arange(1, len(names) + 1)
    drawable = [i for i, d in enumerate(data) if len(d) >= 2 and np.ptp(d) > 0]
    if drawable:
        parts = ax.violinplot([data[i] for i in drawable], positions=positions[drawable], showextrema=False, widths=0.8)
        for i, body in zip(drawable, parts["bodies"]):
            body.set_facecolor(dataset_colour(names[i]))
            body.set_alpha(0.55)
    for i, d in enumerate(data):
        if len(d):
            q1, median, q3 = np.percentile(d, [25, 50, 75])
            ax.vlines(positions[i], q1, q3, color="black", linewidth=4)
            ax.scatter([positions[i]], [median], color="white", edgecolors="black", zorder=3, s=30)
            jitter = np.random.default_rng(i).uniform(-0.08, 0.08, len(d))
            ax.scatter(positions[i] + jitter, d, s=6, color="black", alpha=0.35, zorder=2, linewidths=0)
    ax.set_xticks(
        positions,
        [f"{n}\n(n = {len(d)}, mean {np.mean(d):.4g})" if len(d) else n for n, d in zip(names, data)],
        fontsize=8,
    )
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title, fontsize=10)
    return fig


def score_png(path: Path, frame: pd.DataFrame, *, title: str) -> Path:
    """Score against min-max-scaled I_dist for each scored dataset: one panel per split scheme, points
    coloured by part, the moving average (window |S|/10) and each part's mean score."""
    datasets = [d for d, g in frame.groupby("dataset", sort=False) if g["score"].notna().any()]
    fig = plots._figure(5.2 * len(SCHEMES), 4.2 * max(1, len(datasets)))
    fig.suptitle(title, fontsize=10)
    for r, dataset in enumerate(datasets):
        group = frame[(frame["dataset"] == dataset) & frame["score"].notna()].sort_values("i_dist", kind="stable")
        window = score_window(len(group))
        for c, (scheme, (column, n)) in enumerate(SCHEMES.items()):
            ax = fig.add_subplot(len(datasets), len(SCHEMES), r * len(SCHEMES) + c + 1)
            for part in range(1, n + 1):
                chunk = group[group[column] == part]
                colour = SPLIT_COLOURS[(part - 1) * (len(SPLIT_COLOURS) - 1) // max(1, n - 1)]
                ax.scatter(
                    chunk["i_dist_scaled"],
                    chunk["score"],
                    s=12,
                    alpha=0.6,
                    color=colour,
                    label=f"{column} {part}: mean {chunk['score'].mean():.3g} (n = {len(chunk)})",
                )
                if len(chunk):
                    ax.hlines(
                        chunk["score"].mean(),
                        chunk["i_dist_scaled"].min(),
                        chunk["i_dist_scaled"].max(),
                        color=colour,
                        linewidth=2,
                        linestyles="dashed",
                    )
                    if part > 1:
                        ax.axvline(chunk["i_dist_scaled"].min(), color="grey", linewidth=0.8, linestyle=":")
            ax.plot(
                group["i_dist_scaled"],
                group["score_moving_average"],
                color="black",
                linewidth=1.5,
                label=f"moving average (window {window})",
            )
            ax.set_xlabel("I_dist, min-max scaled")
            ax.set_ylabel("score")
            ax.set_title(f"{dataset}: {scheme}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="best")
    return plots._save(fig, path)
