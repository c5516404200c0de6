"""Helpers of the visual-analysis tests: seeded photo crops, composed cell configs, PNG content checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dsim_testing import cell_config, tracking_uri, write_crops  # noqa: F401  (re-exported)
from PIL import Image


MOONS = [f"moon_{i}.png" for i in range(4)]  # planted reference images no candidate is near
MAGENTAS = [f"magenta_{i}.png" for i in range(4)]  # planted candidates far from every reference


def assert_real_png(path: Path, *, min_width: int = 300, min_height: int = 150, min_bytes: int = 5000) -> np.ndarray:
    """A PNG with real content: big enough, not one flat colour, and a fair share of non-background pixels."""
    assert path.is_file() and path.stat().st_size > min_bytes, (path, path.stat().st_size)
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB")).astype(np.int16)
    h, w, _ = pixels.shape
    assert w >= min_width and h >= min_height, (path, w, h)
    assert pixels.std() > 10, f"{path} is nearly blank"
    flat = pixels.reshape(-1, 3)
    packed = (flat[:, 0].astype(np.int64) << 16) | (flat[:, 1].astype(np.int64) << 8) | flat[:, 2]
    top = np.bincount(packed).argmax()
    background = np.array([top >> 16, (top >> 8) & 255, top & 255])
    drawn = (np.abs(flat - background).sum(1) > 40).mean()
    assert drawn > 0.02, f"{path}: only {drawn:.1%} of the pixels differ from the background"
    return pixels


def count_colour(pixels: np.ndarray, hex_colour: str, tolerance: int = 40) -> int:
    """Pixels within ``tolerance`` (sum of channel differences) of ``hex_colour``."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels.reshape(-1, 3) - rgb).sum(1) <= tolerance).sum())
