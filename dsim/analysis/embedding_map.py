"""UMAP maps of embeddings, and the features one dataset misses in the other.

Everything here works on feature arrays already computed (the embedding cache's), never on a network:

- :func:`umap_coordinates`: a seeded, single-threaded UMAP (umap-learn) of the union of the datasets'
  features, in 2-D or 3-D — the same features and parameters give the same map, bit for bit.
- :func:`missed_features`: which reference images have **no candidate within their k-NN radius** (r_i,
  the distance to the k-th nearest *other* reference image: PRDC's coverage ball, strict ``<``) — the
  features the candidate set misses — and, conversely, which candidates lie **outside every reference
  ball** (PRDC's precision flag). The flags come from :func:`dsim.metrics.prdc` (exact float64 distances
  in feature space, not in the UMAP plane); the ranking columns (nearest image on the other side, and
  ``reach`` = min over balls of distance / radius, ≥ 1 for a flagged image) come from one chunked float32
  pass and are for ordering and display.
- :func:`write_html`: one self-contained page (plotly.js inline: works offline) with the 2-D and the 3-D
  map; hovering a point shows its dataset, path and a thumbnail.
- :func:`write_png`, :func:`thumbnail_grid`: the static figures (matplotlib, Agg).

On the page and the PNGs each dataset has its colour of every figure (:func:`legend_styles`,
:mod:`dsim.analysis.palette`); entries that share a colour are told apart by their marker.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dsim.analysis import palette, plots
from dsim.data.images import image_path
from dsim.errors import DsimError
from dsim.util.fileio import atomic_write_bytes, atomic_write_text

CHUNK_BYTES = 64 * 2**20  # working memory of one distance block in the ranking pass
EXACT_KNN_LIMIT = 4096  # below this many points, umap-learn's own k-NN graph is exact too: we hand it over
SVG_POINTS = 20000  # 2-D maps with more points are drawn with WebGL (scattergl) instead of SVG
MISSED, FAR = "missed", "far"
MISSED_NOTE = "missed: no candidate within its k-NN radius"
FAR_NOTE = "far: outside every reference k-NN ball"
MISSED_COLOUR, FAR_COLOUR = "#d62728", "#000000"


# ---------------------------------------------------------------------------------------------------
# computation


def umap_coordinates(
    features: np.ndarray,
    n_components: int,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "euclidean",
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> np.ndarray:
    """UMAP of ``features`` (N×D) into ``n_components`` (2 or 3) dimensions, seeded and single-threaded.

    ``n_neighbors`` is clipped to N - 1. With the Euclidean metric and fewer than 4096 points the exact
    k-NN graph comes from :func:`exact_knn` (umap-learn would compute the same graph, slower to start).
    With ``cache_dir``, the result is kept under
    ``<cache_dir>/umap/<key>.npy`` (key: the features' bytes, the parameters and umap-learn's version),
    so the cells of a sweep that share an extractor and a pair compute the map once.

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    >>> a, b = umap_coordinates(x, 2, n_neighbors=5), umap_coordinates(x, 2, n_neighbors=5)
    >>> a.shape, bool((a == b).all())                                         # doctest: +SKIP
    ((40, 2), True)
    """
    import umap

    features = np.ascontiguousarray(features, dtype=np.float32)
    n = features.shape[0]
    if n_components not in (2, 3):
        raise DsimError(f"analysis.umap.dims: choose 2 and/or 3, got {n_components}")
    if n < 4:
        raise DsimError(f"UMAP map: needs at least 4 images in all, got {n}")
    params: dict = {
        "n_components": int(n_components),
        "n_neighbors": int(max(2, min(n_neighbors, n - 1))),
        "min_dist": float(min_dist),
        "metric": str(metric),
        "random_state": int(seed),
    }
    cached = None
    if cache_dir is not None:
        key = hashlib.sha256(
            json.dumps({**params, "umap": umap.__version__, "shape": features.shape}, sort_keys=True).encode()
            + features.tobytes()
        ).hexdigest()
        cached = Path(cache_dir) / "umap" / f"{key}.npy"
        if cached.exists():
            try:
                return np.load(cached)
            except (OSError, ValueError):
                pass  # unreadable entry: recompute and rewrite
    extra = {}
    if params["metric"] == "euclidean" and n < EXACT_KNN_LIMIT:
        extra["precomputed_knn"] = (*exact_knn(features, params["n_neighbors"]), None)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(spectral|fully connected|n_jobs|disconnected|knn_search_index).*")
        coords = umap.UMAP(
            init="spectral" if n > params["n_components"] + 8 else "random", n_jobs=1, **params, **extra
        ).fit_transform(features)
    coords = np.asarray(coords, dtype=np.float64)
    if cached is not None:
        buffer = io.BytesIO()
        np.save(buffer, coords)
        atomic_write_bytes(cached, buffer.getvalue(), durable=False)
    return coords


def exact_knn(features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` nearest rows (itself first, at distance 0), Euclidean, float64, in row blocks.

    umap-learn computes this same exact graph itself below 4096 points, but through numba functions that
    are compiled anew in every process (~15 s); handing it over skips that.
    """
    x = torch.as_tensor(np.asarray(features), dtype=torch.float64)
    n = x.shape[0]
    indices = np.empty((n, k), dtype=np.int32)
    distances = np.empty((n, k), dtype=np.float32)
    rows = max(1, CHUNK_BYTES // (8 * max(1, n)))
    for start in range(0, n, rows):
        d = torch.cdist(x[start : start + rows], x, compute_mode="donot_use_mm_for_euclid_dist")
        own = torch.arange(start, start + d.shape[0])
        d[torch.arange(d.shape[0]), own] = -1.0  # itself first, whatever the duplicates
        value, index = torch.sort(d, dim=1, stable=True)
        value[:, 0] = 0.0
        indices[start : start + rows] = index[:, :k].numpy()
        distances[start : start + rows] = value[:, :k].numpy()
    return indices, distances


@dataclass
class Missed:
    """Per-image flags and ranking columns of :func:`missed_features`."""

    reference: pd.DataFrame  # missed, knn_radius, nearest_candidate (row), nearest_candidate_distance, reach
    candidate: pd.DataFrame  # far, nearest_reference (row), nearest_reference_distance, reach
    nearest_k: int


def missed_features(
    reference: np.ndarray, candidate: np.ndarray, *, nearest_k: int = 3, device: str | torch.device = "cpu"
) -> Missed:
    """Reference images no candidate comes close to, and candidates far from every reference image.

    ``missed`` (reference i): no candidate j with d(x_i, y_j) < r_i, r_i the distance from x_i to its
    k-th nearest other reference (``1 - coverage`` of PRDC, per image). ``far`` (candidate j): no
    reference i with d(x_i, y_j) < r_i (``1 - precision``, per image). ``reach`` is min over the other
    side of distance / r (reference: min_j d_ij / r_i; candidate: min_i d_ij / r_i): at least 1 for a
    flagged image (up to float32 rounding), and the larger, the farther outside.
    """
    from dsim.metrics import prdc

    values = prdc(reference, candidate, nearest_k=nearest_k, device=device)
    radius = np.asarray(values.per_image["reference"]["knn_radius"], dtype=np.float64)
    covered = np.asarray(values.per_image["reference"]["covered"]) > 0
    realistic = np.asarray(values.per_image["candidate"]["realistic"]) > 0
    ranking = _nearest_pass(reference, candidate, radius, device)
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(candidate, dtype=np.float64)
    ref_nn = ranking["reference_nearest"]
    reference_table = pd.DataFrame(
        {
            MISSED: ~covered,
            "knn_radius": radius,
            "nearest_candidate": ref_nn,
            "nearest_candidate_distance": np.sqrt(((x - y[ref_nn]) ** 2).sum(1)),
            "reach": ranking["reference_reach"],
        }
    )
    candidate_table = pd.DataFrame(
        {
            FAR: ~realistic,
            "nearest_reference": ranking["candidate_nearest"],
            "nearest_reference_distance": np.asarray(
                values.per_image["candidate"]["nearest_reference_distance"], dtype=np.float64
            ),
            "reach": ranking["candidate_reach"],
        }
    )
    return Missed(reference_table, candidate_table, int(nearest_k))


def _nearest_pass(reference, candidate, radius: np.ndarray, device) -> dict[str, np.ndarray]:
    """Nearest image on the other side (both ways) and ``reach`` (distance / radius), in row blocks."""
    dev = torch.device(device)
    x = torch.as_tensor(np.asarray(reference), dtype=torch.float32, device=dev)
    y = torch.as_tensor(np.asarray(candidate), dtype=torch.float32, device=dev)
    r = torch.as_tensor(radius, dtype=torch.float32, device=dev).clamp_min(torch.finfo(torch.float32).tiny)
    n, m = x.shape[0], y.shape[0]
    ref_nearest = torch.empty(n, dtype=torch.long, device=dev)
    ref_reach = torch.empty(n, dtype=torch.float32, device=dev)
    cand_best = torch.full((m,), float("inf"), device=dev)
    cand_nearest = torch.zeros(m, dtype=torch.long, device=dev)
    cand_reach = torch.full((m,), float("inf"), device=dev)
    rows = max(1, CHUNK_BYTES // (4 * max(1, m)))
    for start in range(0, n, rows):
        d = torch.cdist(x[start : start + rows], y)  # (rows, m)
        value, index = d.min(1)
        ref_nearest[start : start + rows] = index
        ratio = d / r[start : start + rows, None]
        ref_reach[start : start + rows] = value / r[start : start + rows]
        value, index = d.min(0)
        better = value < cand_best
        cand_best = torch.where(better, value, cand_best)
        cand_nearest = torch.where(better, index + start, cand_nearest)
        cand_reach = torch.minimum(cand_reach, ratio.min(0).values)
    return {
        "reference_nearest": ref_nearest.cpu().numpy(),
        "reference_reach": ref_reach.double().cpu().numpy(),
        "candidate_nearest": cand_nearest.cpu().numpy(),
        "candidate_reach": cand_reach.double().cpu().numpy(),
    }


# ---------------------------------------------------------------------------------------------------
# thumbnails


def thumbnail_data_uri(path: Path, size: int) -> str | None:
    """A small JPEG of the image at ``path`` as a ``data:`` URI (``None`` when it cannot be read)."""
    from PIL import Image

    from dsim.data.images import load_rgb

    try:
        image = Image.fromarray(load_rgb(path))
    except Exception:  # noqa: BLE001 - an unreadable image only loses its thumbnail
        return None
    image.thumbnail((size, size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnail_budget(points: pd.DataFrame, max_thumbnails: int, seed: int = 0) -> np.ndarray:
    """Rows of ``points`` that get a hover thumbnail: all when they fit, else flagged ones first, then a
    seeded random sample of the rest."""
    n = len(points)
    if max_thumbnails is None or n <= max_thumbnails:
        return np.arange(n)
    flagged = np.flatnonzero(points["status"].to_numpy() != "")
    rest = np.setdiff1d(np.arange(n), flagged)
    rng = np.random.default_rng(seed)
    keep = flagged[:max_thumbnails]
    extra = max(0, max_thumbnails - len(keep))
    return np.sort(np.concatenate([keep, rng.choice(rest, size=min(extra, len(rest)), replace=False)]))


# ---------------------------------------------------------------------------------------------------
# the interactive page

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 12px 20px; color: #222; }}
h1 {{ font-size: 18px; margin: 4px 0; }}
p.summary {{ font-size: 13px; margin: 4px 0 10px; max-width: 70em; }}
div.map {{ width: 100%; height: 720px; }}
#dsim-thumb {{ position: fixed; display: none; pointer-events: none; background: #fff; border: 1px solid #888;
  padding: 6px; z-index: 1000; font-size: 12px; max-width: 260px; box-shadow: 0 2px 6px rgba(0,0,0,.25); }}
#dsim-thumb img {{ display: block; margin-bottom: 4px; }}
#dsim-thumb-text {{ word-break: break-all; }}
</style>
<script>
var DSIM_THUMBS = {thumbs};
function dsimPlace(box, mouse) {{
  // beside the pointer when the event has one (2-D), else the bottom-right corner
  box.style.left = box.style.top = box.style.right = box.style.bottom = '';
  if (mouse && mouse.clientX !== undefined) {{
    var w = box.offsetWidth, h = box.offsetHeight;
    var x = mouse.clientX - w - 18, y = mouse.clientY + 18;  // left of the pointer: plotly's label is on its right
    if (x < 0) {{ x = Math.min(mouse.clientX + 18, Math.max(0, window.innerWidth - w)); }}
    if (y + h > window.innerHeight) {{ y = Math.max(0, mouse.clientY - h - 18); }}
    box.style.left = x + 'px'; box.style.top = y + 'px';
  }} else {{ box.style.right = '12px'; box.style.bottom = '12px'; }}
}}
function dsimShow(point, mouse) {{
  var c = point.customdata;
  if (c === undefined && point.data && point.data.customdata) {{ c = point.data.customdata[point.pointNumber]; }}
  if (!c) {{ return; }}
  var box = document.getElementById('dsim-thumb'), img = document.getElementById('dsim-thumb-img');
  var uri = c[3] >= 0 ? DSIM_THUMBS[c[3]] : null;
  if (uri) {{ img.src = uri; img.style.display = 'block'; }}
  else {{ img.removeAttribute('src'); img.style.display = 'none'; }}
  document.getElementById('dsim-thumb-text').textContent = c[1] + ': ' + c[0] + (c[2] ? ' (' + c[2] + ')' : '');
  box.style.display = 'block';
  dsimPlace(box, mouse);
}}
function dsimAttachHover(id) {{
  var gd = document.getElementById(id);
  gd.on('plotly_hover', function (event) {{
    if (event.points && event.points.length) {{ dsimShow(event.points[0], event.event); }}
  }});
  gd.on('plotly_unhover', function () {{ document.getElementById('dsim-thumb').style.display = 'none'; }});
}}
</script>
</head>
<body>
<h1>{title}</h1>
<p class="summary">{summary}</p>
<div id="dsim-thumb"><img id="dsim-thumb-img" alt="thumbnail"><div id="dsim-thumb-text"></div></div>
{figures}
</body>
</html>
"""


def legend_styles(points: pd.DataFrame) -> dict[str, tuple[str, int]]:
    """Per legend entry (``label``), in order: its dataset's colour (:func:`~dsim.analysis.palette.dataset_colour`
    of the ``dataset`` column, else of the label) and its marker rank among the entries of that colour."""
    datasets = points["dataset"] if "dataset" in points.columns else points["label"]
    dataset_of = dict(zip(points["label"], datasets))

    def colour_of(label: str) -> str:
        return palette.dataset_colour(dataset_of[label])

    ranks = palette.marker_ranks(dataset_of, colour_of)
    return {label: (colour_of(label), ranks[label]) for label in dataset_of}


def _traces(points: pd.DataFrame, coords: np.ndarray, dims: int, thumb_index: np.ndarray):
    """One trace per dataset, then the missed and the far images on top (bigger, outlined)."""
    import plotly.graph_objects as go

    three = dims == 3
    kind = go.Scatter3d if three else (go.Scatter if len(points) <= SVG_POINTS else go.Scattergl)
    size = float(np.clip(600 / np.sqrt(max(1, len(points))), 3, 9)) * (0.6 if three else 1.0)  # 3-D markers draw bigger
    traces = []
    template = "<b>%{customdata[1]}</b><br>%{customdata[0]}<br>%{customdata[2]}<extra></extra>"

    def trace(mask, name, marker):
        rows = np.flatnonzero(mask)
        custom = [
            [points["relpath"].iat[i], points["label"].iat[i], points["note"].iat[i], int(thumb_index[i])] for i in rows
        ]
        axes = {"x": coords[rows, 0], "y": coords[rows, 1]}
        if three:
            axes["z"] = coords[rows, 2]
        return kind(mode="markers", name=name, customdata=custom, hovertemplate=template, marker=marker, **axes)

    for label, (colour, rank) in legend_styles(points).items():
        mask = (points["label"] == label).to_numpy() & (points["status"] == "").to_numpy()
        symbol = palette.marker(rank, "plotly3d" if three else "plotly")
        traces.append(trace(mask, label, {"size": size, "color": colour, "symbol": symbol, "opacity": 0.75}))
    status = points["status"].to_numpy()
    # 3-D symbols are font glyphs: "x" (✖) is missing from common fonts, a square never is
    for flag, note, colour, symbol in (
        (MISSED, MISSED_NOTE, MISSED_COLOUR, "diamond"),
        (FAR, FAR_NOTE, FAR_COLOUR, "square" if three else "x"),
    ):
        mask = status == flag
        if mask.any():
            owner = points.loc[mask, "label"].iat[0]
            marker = {
                "size": size * 1.6,
                "color": colour,
                "symbol": symbol,
                "opacity": 0.95,
                "line": {"width": 1, "color": "#ffffff" if flag == MISSED else colour},
            }
            traces.append(trace(mask, f"{owner}: {note} ({int(mask.sum())})", marker))
    return traces


def _figure_html(points, coords, dims, thumb_index, div_id: str, include_plotlyjs: bool, title: str) -> str:
    import plotly.graph_objects as go
    import plotly.io as pio

    fig = go.Figure(_traces(points, coords, dims, thumb_index))
    layout = {
        "title": {"text": title},
        "legend": {"itemsizing": "constant"},
        "hovermode": "closest",
        "margin": {"l": 40, "r": 20, "t": 50, "b": 40},
        "template": "plotly_white",
    }
    if dims == 3:
        layout["scene"] = {
            "xaxis": {"title": {"text": "UMAP 1"}},
            "yaxis": {"title": {"text": "UMAP 2"}},
            "zaxis": {"title": {"text": "UMAP 3"}},
            "aspectmode": "cube",
        }
    else:
        layout.update(xaxis={"title": {"text": "UMAP 1"}}, yaxis={"title": {"text": "UMAP 2"}})
    fig.update_layout(**layout)
    return pio.to_html(
        fig,
        include_plotlyjs=include_plotlyjs,
        full_html=False,
        div_id=div_id,
        default_height="720px",
        post_script="dsimAttachHover('{plot_id}');",
        config={"displaylogo": False, "responsive": True},
    )


def write_html(
    path: Path,
    points: pd.DataFrame,
    coords: dict[int, np.ndarray],
    thumbnails: list[str | None],
    *,
    title: str,
    summary: str,
) -> Path:
    """The interactive map page: one figure per entry of ``coords`` (dims → N×dims), plotly.js inline.

    ``points`` has one row per image (``label``, ``relpath``, ``status`` in ``""``/``missed``/``far``,
    ``note``); ``thumbnails[i]`` is row i's ``data:`` URI or ``None``.
    """
    uris: list[str | None] = []
    index = np.full(len(points), -1, dtype=np.int64)
    for i, uri in enumerate(thumbnails):
        if uri:
            index[i] = len(uris)
            uris.append(uri)
    figures = []
    for n, dims in enumerate(sorted(coords)):
        figures.append(_figure_html(points, coords[dims], dims, index, f"dsim-umap-{dims}d", n == 0, f"{dims}-D UMAP"))
    page = _PAGE.format(
        title=html.escape(title),
        summary=html.escape(summary),
        thumbs=json.dumps(uris).replace("</", "<\\/"),
        figures="\n".join(figures),
    )
    atomic_write_text(Path(path), page)
    return Path(path)


# ---------------------------------------------------------------------------------------------------
# static figures


def write_png(path: Path, points: pd.DataFrame, coords: np.ndarray, *, title: str) -> Path:
    """The map as a PNG (2-D, or 3-D with matplotlib's 3-D axes): datasets coloured, flagged images marked."""
    return plots._save(map_figure(points, coords, title=title), path)


def map_figure(points: pd.DataFrame, coords: np.ndarray, *, title: str):
    """The matplotlib figure of :func:`write_png`: one scatter per legend entry, then the flagged images."""
    dims = coords.shape[1]
    fig = plots._figure(9.0, 7.5)
    ax = fig.add_subplot(1, 1, 1, projection="3d" if dims == 3 else None)
    size = float(np.clip(4000 / max(1, len(points)), 4, 40))
    status = points["status"].to_numpy()
    for label, (colour, rank) in legend_styles(points).items():
        mask = (points["label"] == label).to_numpy() & (status == "")
        shape = palette.marker(rank, "matplotlib")
        ax.scatter(*coords[mask].T, s=size, color=colour, marker=shape, alpha=0.7, label=label, linewidths=0)
    for flag, note, colour, marker in ((MISSED, MISSED_NOTE, MISSED_COLOUR, "D"), (FAR, FAR_NOTE, FAR_COLOUR, "x")):
        mask = status == flag
        if mask.any():
            owner = points.loc[mask, "label"].iat[0]
            ax.scatter(
                *coords[mask].T,
                s=size * 2.5,
                color=colour,
                marker=marker,
                alpha=0.95,
                label=f"{owner}: {note} ({int(mask.sum())})",
                **({"edgecolors": "white", "linewidths": 0.6} if marker == "D" else {"linewidths": 1.2}),
            )
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    if dims == 3:
        ax.set_zlabel("UMAP 3")
    else:
        ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=8, markerscale=1.5, frameon=False)
    ax.set_title(title, fontsize=10)
    return fig


def thumbnail_grid(
    path: Path, table: pd.DataFrame, root: Path, *, title: str, caption: str, max_images: int = 64
) -> Path:
    """The first ``max_images`` rows of ``table`` (``relpath`` + ``caption`` column) as a grid of thumbnails."""
    shown = table.head(max_images)
    if shown.empty:
        fig = plots._figure(6.0, 1.6)
        fig.suptitle(title, fontsize=10)
        fig.text(0.5, 0.4, "none", ha="center", va="center", fontsize=14, color="#555555")
        return plots._save(fig, path)
    columns = int(min(8, max(1, len(shown))))
    rows = int(np.ceil(len(shown) / columns))
    images = [plots._thumbnail(image_path(root, relpath)) for relpath in shown["relpath"]]
    aspect = float(np.clip(max(image.shape[0] / image.shape[1] for image in images), 0.4, 2.5))  # height / width
    fig = plots._figure(1.9 * columns + 0.2, (1.9 * aspect + 0.45) * rows + 0.6)
    fig.suptitle(title, fontsize=10)
    for i, ((_, row), image) in enumerate(zip(shown.iterrows(), images)):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(image)
        ax.set_xticks([])
        ax.set_yticks([])
        name = str(row["relpath"])
        ax.set_title(name if len(name) <= 24 else "..." + name[-21:], fontsize=6)
        ax.set_xlabel(f"{caption} {row[caption]:.3f}", fontsize=6)
    return plots._save(fig, path)
