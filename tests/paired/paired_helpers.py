"""Helpers of the paired-metric tests: bundled photos as tiles, JPEG copies, composed cell configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dsim_testing import cell_config, tracking_uri  # noqa: F401  (re-exported)
from PIL import Image

#: scikit-image's bundled photographs (colour and greyscale; all ship with the package, nothing downloaded)
BUNDLED_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                  "camera", "coins", "moon", "brick", "grass", "gravel", "cell", "clock", "text", "page")


def photo_tiles(names=BUNDLED_PHOTOS, *, side: int = 256, tiles: int = 2) -> dict[str, np.ndarray]:
    """Each photo resized (shorter side ``side``), centre-cropped to ``side``², cut into ``tiles``² tiles."""
    from skimage import data

    out = {}
    for name in names:
        array = getattr(data, name)()
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=2)
        image = Image.fromarray(np.ascontiguousarray(array[..., :3]))
        w, h = image.size
        scale = side / min(w, h)
        image = image.resize((max(side, round(w * scale)), max(side, round(h * scale))), Image.LANCZOS)
        w, h = image.size
        left, top = (w - side) // 2, (h - side) // 2
        square = np.asarray(image.crop((left, top, left + side, top + side)))
        step = side // tiles
        for ty in range(tiles):
            for tx in range(tiles):
                out[f"{name}_{ty}{tx}"] = np.ascontiguousarray(square[ty * step:(ty + 1) * step, tx * step:(tx + 1) * step])
    return out


def write_pngs(folder: Path, images: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in images.items():
        Image.fromarray(array).save(folder / f"{name}.png")
    return folder


def write_jpeg_copies(source: Path, folder: Path, quality: int) -> Path:
    """Every PNG of ``source`` saved as ``<stem>.jpg`` at ``quality`` in ``folder`` (same stems: by_name pairs)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.png")):
        Image.open(path).convert("RGB").save(folder / f"{path.stem}.jpg", quality=quality)
    return folder
