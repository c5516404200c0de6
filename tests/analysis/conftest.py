"""Fixtures of the visual-analysis tests: small image sets with known missed and far images, one analysed cell.

- ``ref``: 30 random crops of the bundled photographs + 4 crops of the Moon (grey craters) that no
  candidate resembles: the *missed* reference images.
- ``cand``: 30 other crops of the same photographs + 4 flat magenta images that resemble no reference
  image: the *far* candidates.
- ``extra``: 12 more crops (a third dataset on the map, a second candidate in the distance views).

The extractor is ``pixels`` (16×16 RGB, 768-d): no weights, fast, and the planted images are far apart in it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from visual_helpers import MAGENTAS, MOONS, cell_config, write_crops



def write_sets(root: Path) -> dict[str, Path]:
    from skimage import data

    write_crops(root / "ref", 30, seed=1)
    write_crops(root / "cand", 30, seed=2)
    write_crops(root / "extra", 12, seed=3)
    moon = data.moon()
    for i, name in enumerate(MOONS):
        y, x = 40 + 80 * i, 300 - 60 * i
        Image.fromarray(moon[y:y + 150, x:x + 150]).convert("RGB").resize((96, 96)).save(root / "ref" / name)
    for i, name in enumerate(MAGENTAS):
        a = np.zeros((96, 96, 3), np.uint8)
        a[..., 0], a[..., 2] = 255, 200 + 10 * i
        a[:48, :48, 1] = 60 * i
        Image.fromarray(a).save(root / "cand" / name)
    return {"ref": root / "ref", "cand": root / "cand", "extra": root / "extra"}


@pytest.fixture(scope="session")
def image_sets(tmp_path_factory) -> dict[str, Path]:
    return write_sets(tmp_path_factory.mktemp("visual_sets"))


@pytest.fixture(scope="session")
def analysed_cell(tmp_path_factory, image_sets):
    """One ``odist`` cell with ``analysis=[umap,distance]``: extra dataset on the map and in the violins, a
    score file. The extra set is embedded beforehand (as a previous run would have); every ``embed`` call of
    the analysis is recorded, to show it forwards no image through the network again."""
    from dsim.embeddings.embed import embed as real_embed
    from dsim.analysis import visual
    from dsim.pipeline import run_cell

    tmp = tmp_path_factory.mktemp("visual_cell")
    scores = pd.DataFrame({"relpath": sorted(p.name for p in image_sets["cand"].glob("*.png"))})
    scores["score"] = np.linspace(1.0, 0.0, len(scores)) ** 2
    scores = scores.iloc[2:]  # two images without a score
    scores.to_csv(tmp / "scores.csv", index=False)
    cfg = cell_config(tmp, [
        "extractor=pixels", "metric.name=odist", "++metric.params.n_components=10",
        f"pair.reference={image_sets['ref']}", f"pair.candidate={image_sets['cand']}",
        "analysis=[umap,distance]", f"analysis.umap.datasets=['{image_sets['extra']}']", "analysis.umap.n_neighbors=10",
        f"analysis.distance.candidates=['{image_sets['extra']}']", "analysis.distance.n_components=10",
        f"analysis.distance.score_file={tmp / 'scores.csv'}",
    ])
    real_embed(image_sets["extra"], "pixels", cache_dir=cfg["cache_dir"], device="cpu", progress=False)

    calls = []

    def recording_embed(*args, **kwargs):
        result = real_embed(*args, **kwargs)
        calls.append((Path(args[0]).name, result.n_computed))
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(visual, "embed", recording_embed)
        record = run_cell(cfg, tmp / "job")
    return {"tmp": tmp, "cfg": cfg, "record": record, "artifacts": tmp / "job" / "artifacts", "embed_calls": calls}
