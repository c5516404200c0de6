"""One colour per dataset, the same in every figure: :func:`dataset_colour` maps a dataset's name to its colour.

The colour is a function of the name alone (a SHA-256 of it picks one of :data:`DATASET_COLOURS`), so the UMAP
map (PNG and page), the violins of a cell and those of its sweep draw a dataset alike, in any process and
whatever the other datasets of the figure are. Two names can share a colour; a figure where that matters
(a scatter told apart by its legend) gives each later one of a colour another marker: :func:`marker_ranks`
and :func:`marker`.

>>> dataset_colour("photos_a") == dataset_colour("photos_a"), dataset_colour("photos_a") in DATASET_COLOURS
(True, True)
>>> marker(0, "matplotlib"), marker(1, "plotly"), marker(1, "plotly3d")
('o', 'square', 'circle-open')
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

#: distinct on a white ground; no red and no black: those mark the UMAP's missed and far images
DATASET_COLOURS = (
    "#1f77b4",  # blue
    "#ff7f0e",  # orange
    "#2ca02c",  # green
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#7f7f7f",  # grey
    "#bcbd22",  # olive
    "#17becf",  # cyan
    "#393b79",  # indigo
    "#637939",  # moss
    "#e7ba52",  # gold
    "#7b4173",  # plum
)

#: per drawing library, the markers of the 1st, 2nd... dataset of one colour (the UMAP's flags keep theirs:
#: missed is a diamond, far an x, or a square in 3-D)
MARKERS = {
    "matplotlib": ("o", "s", "^", "v", "P", "*"),
    "plotly": ("circle", "square", "triangle-up", "triangle-down", "cross", "star"),
    "plotly3d": ("circle", "circle-open", "cross", "square-open", "diamond-open"),
}


def dataset_colour(name: str) -> str:
    """The colour of dataset ``name`` (``#rrggbb``) in every figure."""
    digest = hashlib.sha256(str(name).encode()).digest()
    return DATASET_COLOURS[int.from_bytes(digest[:8], "big") % len(DATASET_COLOURS)]


def marker_ranks(names: Iterable[str], colour_of: Callable[[str], str] = dataset_colour) -> dict[str, int]:
    """Per distinct name, how many names before it (in the given order) share its colour: 0 for the first of a
    colour, 1 for the next... — the index of the marker that tells same-coloured entries apart.

    ``colour_of`` gives an entry's colour (default: the entry is a dataset name); a map's legend entries
    (``photos (reference)``) pass the colour of their dataset."""
    ranks: dict[str, int] = {}
    seen: dict[str, int] = {}
    for name in dict.fromkeys(names):
        colour = colour_of(name)
        ranks[name] = seen.get(colour, 0)
        seen[colour] = ranks[name] + 1
    return ranks


def marker(rank: int, library: str) -> str:
    """The marker of rank ``rank`` (:func:`marker_ranks`) in ``library`` (a key of :data:`MARKERS`), cycling."""
    shapes = MARKERS[library]
    return shapes[rank % len(shapes)]
