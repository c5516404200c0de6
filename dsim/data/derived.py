"""Derived datasets: folders dsim writes once from a recipe (perturbed images, generator samples).

A derived folder is named by a hash of everything that determines its content, holds one losslessly
written file per image, and is finished by a ``.complete.json`` marker that records the recipe. It is
made under a lock (parallel cells wait for the first, then reuse it), each image is written atomically
(an interrupted run leaves only whole files; the next run writes the missing ones), and the marker is
written last — so a folder with a marker is complete, and one without is resumed, never trusted.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dsim.util.fileio import atomic_write_text

COMPLETE = ".complete.json"
#: the cache sub-folders of derived datasets (``dsim.data.perturb``, ``dsim.generators.samples``)
KINDS = ("perturbed", "generated")


def png_bytes(image: np.ndarray) -> bytes:
    """An H×W×3 ``uint8`` image as PNG bytes (zlib level 6: the same image always gives the same bytes)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def is_complete(folder: Path) -> bool:
    return (Path(folder) / COMPLETE).is_file()


def _lock_path(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.lock"


def make_once(folder: Path, fill: Callable[[Path], dict], recipe: dict) -> Path:
    """``folder``, made by ``fill(folder)`` unless it is complete; ``fill`` writes the files that are missing
    and returns facts for the marker (image count, skipped files), which also records ``recipe``."""
    from filelock import FileLock

    folder = Path(folder)
    if is_complete(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(_lock_path(folder))):
        if is_complete(folder):  # another process made it while we waited
            return folder
        folder.mkdir(exist_ok=True)
        facts = fill(folder)
        atomic_write_text(folder / COMPLETE, json.dumps({**recipe, **facts}, indent=2, default=str) + "\n")
    return folder


def derived_folders(cache_dir: Path) -> list[Path]:
    """Every derived dataset folder under ``cache_dir`` (complete or not), sorted."""
    return sorted(p for kind in KINDS for p in (Path(cache_dir) / kind).glob("*") if p.is_dir())


def remove(folder: Path) -> bool:
    """Delete a derived folder unless a process is making it now (its lock is held): then ``False``.
    It is made again, identically, when a run needs it."""
    import shutil

    from filelock import FileLock, Timeout

    lock = FileLock(str(_lock_path(folder)), timeout=0)
    try:
        with lock:
            shutil.rmtree(folder)
    except Timeout:
        return False
    _lock_path(folder).unlink(missing_ok=True)
    return True
