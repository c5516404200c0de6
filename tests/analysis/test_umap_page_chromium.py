"""The interactive map, looked at: headless Chromium loads ``umap.html`` offline and reports what it drew."""

import base64
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from chromium_probe import chromium, probe_page
from PIL import Image

from dsim.analysis import embedding_map as em

N_POINTS = 34 + 34 + 12


def test_page_is_self_contained(analysed_cell):
    text = (analysed_cell["artifacts"] / "umap.html").read_text()
    assert not re.search(r"<script[^>]+src=", text, re.I), "the page must not load scripts from elsewhere"
    assert not re.search(r"<link[^>]+href=[\"']?https?:", text, re.I)
    assert "Plotly.newPlot" in text and len(text) > 3_000_000  # plotly.js is inline
    thumbs = json.loads(re.search(r"var DSIM_THUMBS = (\[.*?\]);", text, re.S).group(1))
    assert len(thumbs) == N_POINTS  # under max_thumbnails: every image has one
    with Image.open(io.BytesIO(base64.b64decode(thumbs[0].split(",", 1)[1]))) as image:
        assert image.format == "JPEG" and max(image.size) == 96


def test_chromium_draws_every_point_without_script_errors(analysed_cell, tmp_path):
    chromium()  # skip (fail under CI) when there is no browser
    result = probe_page(analysed_cell["artifacts"] / "umap.html", tmp_path)
    assert result["errors"] == [] and result["externalScripts"] == 0
    missed = pd.read_csv(analysed_cell["artifacts"] / "missed_reference.csv")
    far = pd.read_csv(analysed_cell["artifacts"] / "far_candidate.csv")
    for dims in (2, 3):
        figure = result["figures"][f"dsim-umap-{dims}d"]
        assert "error" not in figure, figure
        assert figure["nData"] == N_POINTS
        names = {t["name"]: t["n"] for t in figure["traces"]}
        plain = names["ref (reference)"] + names["cand (candidate)"] + names["extra"]
        assert plain == N_POINTS - len(missed) - len(far)
        assert [n for name, n in names.items() if em.MISSED_NOTE in name] == [len(missed)]
        assert [n for name, n in names.items() if em.FAR_NOTE in name] == [len(far)]
        assert figure["legendItems"] == 5
    two, three = result["figures"]["dsim-umap-2d"], result["figures"]["dsim-umap-3d"]
    assert two["svgPoints"] == N_POINTS  # every marker is in the SVG
    assert three["gl3d"] and three["colouredPixels"] > 500  # the WebGL scene drew coloured markers
    hover = two["hover"]  # a mouse move onto a point shows its path and thumbnail, as plotly's own label does
    assert hover["shown"] and hover["thumb"] == "data:image/jpeg;base64,"
    relpath = hover["text"].split(": ", 1)[1].split(" (", 1)[0]
    assert relpath.endswith(".png") and relpath in hover["label"]


def test_small_page_from_arrays_renders(tmp_path):
    """write_html alone (no UMAP): a WebGL-free 2-D page and a 3-D one, points without thumbnails."""
    chromium()
    rng = np.random.default_rng(0)
    points = pd.DataFrame({"label": ["a"] * 5 + ["b"] * 4, "relpath": [f"{i}.png" for i in range(9)],
                           "status": [""] * 4 + ["missed"] + [""] * 3 + ["far"], "note": ""})
    coords = {2: rng.normal(size=(9, 2)), 3: rng.normal(size=(9, 3))}
    page = em.write_html(tmp_path / "m.html", points, coords, [None] * 9, title="t <&>", summary="s")
    result = probe_page(page, tmp_path)
    assert result["errors"] == []
    assert result["figures"]["dsim-umap-2d"]["svgPoints"] == 9 and result["figures"]["dsim-umap-3d"]["nData"] == 9
    hover = result["figures"]["dsim-umap-2d"]["hover"]
    assert hover["shown"] and hover["thumb"] == ""  # no thumbnail: the path alone


@pytest.mark.parametrize("ci", ["true"])
def test_missing_chromium_fails_under_ci(monkeypatch, ci):
    import chromium_probe

    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(chromium_probe, "CANDIDATES", ("no-such-browser-dsim",))
    with pytest.raises(pytest.fail.Exception, match="CI"):
        chromium_probe.chromium()
