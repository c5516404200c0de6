"""Metrics on real photographs through real ImageNet features behave as they must."""

import warnings

import numpy as np
from PIL import Image, ImageFilter

import dsim
from dsim_testing import write_crops

RADII = (0.0, 1.0, 2.0, 4.0)


def test_fid_grows_with_blur_radius_and_is_zero_for_identical_sets(tmp_path):
    reference = write_crops(tmp_path / "reference", 32, seed=11)
    originals = write_crops(tmp_path / "candidate", 32, seed=12)
    cache = tmp_path / "cache"
    ref = dsim.embed(tmp_path / "reference", extractor="efficientnet_lite0", cache_dir=cache, progress=False)

    fids = []
    for radius in RADII:
        folder = tmp_path / f"blur_{radius:g}"
        folder.mkdir()
        for path in originals:
            Image.open(path).filter(ImageFilter.GaussianBlur(radius)).save(folder / path.name)
        cand = dsim.embed(folder, extractor="efficientnet_lite0", cache_dir=cache, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dsim.metrics.RankDeficientWarning)  # 32 images < 1280 dims
            fids.append(dsim.metrics.fid(ref.features, cand.features)["fid"])
            same = dsim.metrics.fid(ref.features, ref.features)["fid"]

    assert fids == sorted(fids) and fids[-1] > 1.5 * fids[0], fids
    assert abs(same) < 1e-6 * np.trace(np.cov(ref.features.T, dtype=np.float64))
    assert len(reference) == 32
