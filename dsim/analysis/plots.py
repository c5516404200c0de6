"""The figures of the analyses, drawn with matplotlib's object API (no pyplot, no display: Agg).

Every function writes one PNG atomically and returns its path.
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


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


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
    """One panel per ``(label, values, entropy, stats)``: values against entropy, with a least-squares line."""
    columns = min(3, len(series))
    rows = math.ceil(len(series) / columns)
    fig = _figure(5.0 * columns, 4.0 * rows)
    fig.suptitle(title)
    for i, (label, values, entropy, stats) in enumerate(series):
        ax = fig.add_subplot(rows, columns, i + 1)
        x = np.asarray(entropy, dtype=np.float64)
        y = np.asarray(values, dtype=np.float64)
        ax.scatter(x, y, s=14, alpha=0.7)
        finite = np.isfinite(x) & np.isfinite(y)
        if finite.sum() >= 2 and np.ptp(x[finite]) > 0:
            slope, intercept = np.polyfit(x[finite], y[finite], 1)
            xs = np.linspace(x[finite].min(), x[finite].max(), 2)
            ax.plot(xs, slope * xs + intercept, color="tab:red", linewidth=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.set_title(_stats_label(stats), fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)


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
    """A labelled, annotated heatmap of a square or rectangular table (e.g. a correlation matrix)."""
    n_rows, n_cols = matrix.shape
    fig = _figure(max(4.0, 0.9 * n_cols + 2.5), max(3.0, 0.6 * n_rows + 1.8))
    ax = fig.add_subplot(1, 1, 1)
    data = matrix.to_numpy(dtype=np.float64)
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(n_cols), [str(c) for c in matrix.columns], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n_rows), [str(i) for i in matrix.index], fontsize=8)
    for i in range(n_rows):
        for j in range(n_cols):
            text = "" if not np.isfinite(data[i, j]) else f"{data[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def pivot_table(path: Path, pivot: pd.DataFrame, *, title: str) -> Path:
    """The report pivot as a coloured table: each column coloured by its own rank (scales differ)."""
    ranks = pivot.rank(axis=0, pct=True)
    labels = [" · ".join(str(part) for part in c) if isinstance(c, tuple) else str(c) for c in pivot.columns]
    shown = pd.DataFrame(ranks.to_numpy(), index=pivot.index, columns=labels)
    fig = _figure(max(5.0, 1.3 * len(labels) + 3.0), max(2.5, 0.5 * len(pivot) + 2.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(np.ma.masked_invalid(shown.to_numpy(dtype=np.float64)), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(pivot)), [str(i) for i in pivot.index], fontsize=8)
    values = pivot.to_numpy(dtype=np.float64)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.4g}", ha="center", va="center", fontsize=7, color="white")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


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
