"""The figures of the analyses, drawn with matplotlib's object API (no pyplot, no display: Agg).

Every figure function writes one PNG atomically and returns its path; ``entropy_figure`` and ``pivot_figure``
return the matplotlib figure they save (what tests read). Fit lines need :data:`MIN_FIT_POINTS` points; the
report's cells are coloured from each column's best to its worst value by the metric's declared direction
(:func:`badness`), numbers in black or white by their cell's luminance (:func:`text_colour`).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from dsim.data.images import image_path
from dsim.util.fileio import atomic_write_bytes

THUMBNAIL = 160  # px, longer side of the images in a match grid

#: fewest finite points a least-squares line is drawn through (a sweep's few cells, a cell's few items): a
#: line through 3 or 4 points shows those points more than a trend. The points are drawn all the same, and a
#: panel without its line says why (:func:`no_fit_reason`).
MIN_FIT_POINTS = 5

#: the report's cell colours: 0 = a column's best value (blue), 1 = its worst (red); ColorBrewer's RdYlBu
#: stays readable with the common colour-vision deficiencies
REPORT_CMAP = "RdYlBu_r"
#: the cells of a column whose value has no declared direction: one neutral grey, no ranking
NEUTRAL_COLOUR = "#dddddd"
#: the column-label marks of a value's declared direction
DIRECTION_MARKS = {True: "↑", False: "↓", None: "?"}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def bar_handle(colour: str):
    """A legend entry for bars of ``colour`` (a figure-level legend of small multiples)."""
    from matplotlib.patches import Patch

    return Patch(color=colour)


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def _stats_label(stats: dict) -> str:
    def fmt(v):
        return "nan" if not np.isfinite(v) else f"{v:.3g}"

    return (
        f"Pearson r = {fmt(stats['pearson_r'])} (p = {fmt(stats['pearson_p'])}), "
        f"Spearman ρ = {fmt(stats['spearman_rho'])}, n = {int(stats['n'])}"
    )


def entropy_scatter(
    path: Path, series: list[tuple[str, np.ndarray, np.ndarray, dict]], *, title: str, xlabel: str = "entropy (bits)"
) -> Path:
    """One panel per ``(label, values, entropy, stats)``: values against entropy, with a least-squares line
    where :func:`no_fit_reason` allows one."""
    return _save(entropy_figure(series, title=title, xlabel=xlabel), path)


def entropy_figure(series: list[tuple[str, np.ndarray, np.ndarray, dict]], *, title: str, xlabel: str):
    """The matplotlib figure of :func:`entropy_scatter`: every point drawn; a panel without a line says why."""
    columns = min(3, len(series))
    rows = math.ceil(len(series) / columns)
    fig = _figure(5.0 * columns, 4.0 * rows)
    fig.suptitle(title)
    for i, (label, values, entropy, stats) in enumerate(series):
        ax = fig.add_subplot(rows, columns, i + 1)
        x = np.asarray(entropy, dtype=np.float64)
        y = np.asarray(values, dtype=np.float64)
        ax.scatter(x, y, s=14, alpha=0.7)
        _fit_line(ax, x, y)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.set_title(_stats_label(stats), fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def no_fit_reason(x, y) -> str | None:
    """Why a least-squares line of ``y`` on ``x`` (their finite pairs) is not drawn — fewer than
    :data:`MIN_FIT_POINTS` points, or one x for all — or ``None`` when it is."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    n = int(finite.sum())
    if n < MIN_FIT_POINTS:
        return f"no fit line: {n} point(s), a line needs {MIN_FIT_POINTS}"
    if np.ptp(x[finite]) == 0:
        return "no fit line: every point has the same x"
    return None


def no_fit_note(ax, reason: str) -> None:
    """Write why a panel has no fit line (:func:`no_fit_reason`) at the top of ``ax``."""
    note = {"facecolor": "white", "alpha": 0.8, "edgecolor": "none"}
    ax.text(0.5, 0.97, reason, transform=ax.transAxes, ha="center", va="top", fontsize=8, color="#555555", bbox=note)


def _fit_line(ax, x: np.ndarray, y: np.ndarray) -> None:
    """Draw the least-squares line of ``y`` on ``x`` into ``ax``, or a note saying why there is none."""
    reason = no_fit_reason(x, y)
    if reason is not None:
        no_fit_note(ax, reason)
        return
    finite = np.isfinite(x) & np.isfinite(y)
    slope, intercept = np.polyfit(x[finite], y[finite], 1)
    xs = np.linspace(x[finite].min(), x[finite].max(), 2)
    ax.plot(xs, slope * xs + intercept, color="tab:red", linewidth=1)


def _thumbnail(path: Path) -> np.ndarray:
    from PIL import Image

    from dsim.data.images import load_rgb

    try:
        image = Image.fromarray(load_rgb(path))
    except Exception:  # noqa: BLE001 - a missing or unreadable image is drawn as grey, never fails the run
        return np.full((THUMBNAIL, THUMBNAIL, 3), 128, dtype=np.uint8)
    image.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.BICUBIC)
    return np.asarray(image)


def match_grid(
    path: Path, matches: pd.DataFrame, column: str, *, reference_root: Path, candidate_root: Path, title: str
) -> Path:
    """Rows ``best`` / ``average`` / ``worst``; each pair drawn as candidate | reference with its value."""
    groups = list(dict.fromkeys(matches["group"]))
    k = int(matches.groupby("group").size().max())
    fig = _figure(2.0 * 2 * k + 0.5, 2.3 * len(groups) + 0.6)
    fig.suptitle(title)
    grid = fig.add_gridspec(len(groups), 2 * k)
    for r, group in enumerate(groups):
        rows = matches[matches["group"] == group].reset_index(drop=True)
        for j, row in rows.iterrows():
            for side, offset, root in (("candidate", 0, candidate_root), ("reference", 1, reference_root)):
                ax = fig.add_subplot(grid[r, 2 * j + offset])
                ax.imshow(_thumbnail(image_path(root, row[side])))
                ax.set_xticks([])
                ax.set_yticks([])
                name = Path(row[side]).name
                ax.set_xlabel(name if len(name) <= 22 else name[:19] + "...", fontsize=6)
                if offset == 0:
                    ax.set_title(f"{group} {j + 1}: {column} = {row[column]:.4g}", fontsize=7, loc="left")
                    if j == 0:
                        ax.set_ylabel(f"{group}\ncandidate | reference", fontsize=8)
    return _save(fig, path)


def heatmap(
    path: Path, matrix: pd.DataFrame, *, title: str, vmin: float = -1.0, vmax: float = 1.0, cmap: str = "RdBu_r"
) -> Path:
    """A labelled, annotated heatmap of a square or rectangular table (e.g. a correlation matrix); each number in
    black or white, whichever reads on its cell (:func:`text_colour`)."""
    n_rows, n_cols = matrix.shape
    fig = _figure(max(4.0, 0.9 * n_cols + 2.5), max(3.0, 0.6 * n_rows + 1.8))
    ax = fig.add_subplot(1, 1, 1)
    data = matrix.to_numpy(dtype=np.float64)
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(n_cols), [str(c) for c in matrix.columns], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n_rows), [str(i) for i in matrix.index], fontsize=8)
    for i in range(n_rows):
        for j in range(n_cols):
            if np.isfinite(data[i, j]):
                colour = text_colour(image.cmap(image.norm(data[i, j])))
                ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def pivot_table(path: Path, pivot: pd.DataFrame, *, title: str, directions: dict | None = None) -> Path:
    """The report pivot as a coloured table (:func:`pivot_figure`)."""
    return _save(pivot_figure(pivot, title=title, directions=directions), path)


def badness(pivot: pd.DataFrame, directions: dict | None = None) -> pd.DataFrame:
    """Each value's place between its column's best (0) and worst (1) value: min-max scaled within the column,
    flipped where higher is better (``directions[column]``: True higher is better, False lower is better).

    NaN where the value is missing or the column's direction is unknown (not in ``directions``, or None);
    0.5 for every value of a column whose values are all equal. One colormap then serves every column.
    """
    directions = directions or {}
    out = pd.DataFrame(np.nan, index=pivot.index, columns=pivot.columns)
    for column in pivot.columns:
        higher_is_better = directions.get(column)
        if higher_is_better is None:
            continue
        values = pivot[column].astype(np.float64)
        low, high = values.min(), values.max()
        scaled = (values - low) / (high - low) if high > low else values * 0 + 0.5
        out[column] = 1.0 - scaled if higher_is_better else scaled
    return out


def text_colour(rgba) -> str:
    """``black`` or ``white``: whichever contrasts more with the background ``rgba`` (WCAG relative luminance)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "black" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "white"


def cell_colours(pivot: pd.DataFrame, directions: dict | None = None) -> np.ndarray:
    """The RGBA background of every cell (rows × columns × 4): :data:`REPORT_CMAP` of :func:`badness`;
    :data:`NEUTRAL_COLOUR` in a column of unknown direction; white where a value is missing."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgba

    directions = directions or {}
    scores = badness(pivot, directions).to_numpy(dtype=np.float64)
    colours = colormaps[REPORT_CMAP](np.nan_to_num(scores, nan=0.0))
    unknown = np.array([directions.get(c) is None for c in pivot.columns], dtype=bool)
    colours[:, unknown] = to_rgba(NEUTRAL_COLOUR)
    colours[~np.isfinite(pivot.to_numpy(dtype=np.float64))] = to_rgba("white")
    return colours


def column_label(column, higher_is_better: bool | None) -> str:
    """A pivot column as a tick label: its parts joined by `` · ``, and its direction mark (↑, ↓ or ?)."""
    text = " · ".join(str(part) for part in column) if isinstance(column, tuple) else str(column)
    return f"{text} {DIRECTION_MARKS[higher_is_better]}"


def pivot_figure(pivot: pd.DataFrame, *, title: str, directions: dict | None = None):
    """The report pivot as a coloured table: every column from its best value (blue) to its worst (red) by the
    direction its metric declares (``directions``, see :func:`badness`), so one colour bar reads for all;
    columns of unknown direction grey, and said so. Each value is written in black or white, whichever
    reads on its cell (:func:`text_colour`)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    directions = directions or {}
    labels = [column_label(c, directions.get(c)) for c in pivot.columns]
    colours = cell_colours(pivot, directions)
    fig = _figure(max(5.0, 1.3 * len(labels) + 3.0), max(3.2, 0.5 * len(pivot) + 2.8))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(colours, aspect="auto")
    ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(pivot)), [str(i) for i in pivot.index], fontsize=8)
    values = pivot.to_numpy(dtype=np.float64)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                colour = text_colour(colours[i, j])
                ax.text(j, i, f"{values[i, j]:.4g}", ha="center", va="center", fontsize=7, color=colour)
    bar = fig.colorbar(
        ScalarMappable(Normalize(0.0, 1.0), colormaps[REPORT_CMAP]), ax=ax, orientation="horizontal", shrink=0.6
    )
    bar.set_ticks([0.0, 1.0], labels=["better", "worse"])
    marks = "↑ higher is better · ↓ lower is better"
    if any(directions.get(c) is None for c in pivot.columns):
        marks += " · ? no declared direction: grey, not coloured"
    bar.set_label(f"better ← → worse: each column from its own best value to its worst\n{marks}", fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig


def metric_vs_strength(path: Path, frame: pd.DataFrame, *, title: str) -> Path:
    """One panel per metric value: value against perturbation strength, a line per extractor × pair."""
    metrics = list(dict.fromkeys(frame["metric"]))
    columns = min(3, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    fig = _figure(5.0 * columns, 3.8 * rows)
    fig.suptitle(title)
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(rows, columns, i + 1)
        for (extractor, pair), line in frame[frame["metric"] == metric].groupby(["extractor", "pair"], sort=True):
            line = line.sort_values("strength")
            label = pair if extractor == "none" else f"{extractor} · {pair}"
            ax.plot(line["strength"], line["value"], marker="o", label=label)
        ax.set_xlabel(f"{frame['perturbation'].iat[0]} strength")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def selection_plot(
    path: Path,
    scaled: np.ndarray,
    chosen: dict[int, np.ndarray],
    *,
    title: str,
    band: tuple[float, float] | None = None,
) -> Path:
    """The pool's scaled I_dist as a histogram, the band shaded, and each q's picks as a row of ticks."""
    fig = _figure(7, 3.6)
    ax = fig.add_subplot()
    ax.hist(scaled, bins=min(50, max(10, len(scaled) // 20)), color="0.75", label=f"pool ({len(scaled)} images)")
    if band is not None:
        ax.axvspan(*band, color="tab:orange", alpha=0.12, label=f"band [{band[0]:g}, {band[1]:g}]")
    top = ax.get_ylim()[1]
    for level, (q, rows) in enumerate(sorted(chosen.items())):
        height = top * (1.04 + 0.06 * level)
        ax.plot(scaled[rows], np.full(len(rows), height), "|", markersize=10, mew=2, label=f"q = {q}")
    ax.set_ylim(0, top * (1.1 + 0.06 * len(chosen)))
    ax.set(xlabel="min-max-scaled I_dist from the train set", ylabel="pool images", title=title)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)
