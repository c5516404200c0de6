"""Test helpers shared across folders: small real-photo datasets and running the `dsim` command.

A module of its own (not conftest.py): sub-folders have conftest.py files too, and `from conftest import`
would pick whichever was imported first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")


def photo(name: str) -> np.ndarray:
    from skimage import data

    return getattr(data, name)()


def write_crops(folder: Path, n: int, seed: int, size: int = 96) -> list[Path]:
    """``n`` seeded random square crops of the bundled photos, as PNGs in ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        image = photo(PHOTOS[i % len(PHOTOS)])
        side = int(rng.integers(min(image.shape[:2]) // 4, min(image.shape[:2]) // 2))
        y = int(rng.integers(0, image.shape[0] - side))
        x = int(rng.integers(0, image.shape[1] - side))
        crop = Image.fromarray(image[y:y + side, x:x + side]).resize((size, size), Image.LANCZOS)
        paths.append(folder / f"{i:03d}.png")
        crop.save(paths[-1])
    return paths


def run_dsim(*args: str, cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the ``dsim`` command in a subprocess (the way users run it)."""
    full_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    full_env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
    done = subprocess.run([sys.executable, "-m", "dsim.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"dsim {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def tracking_uri(tmp: Path) -> str:
    """An SQLite MLflow store under ``tmp``."""
    return f"sqlite:///{tmp / 'mlruns' / 'mlflow.db'}"


def cell_config(tmp: Path, overrides: list[str]) -> dict:
    """A composed, resolved cell config (as ``dsim`` builds it) with the cache and MLflow store under ``tmp``.

    Creating an MLflow store takes seconds: tests share one ``tmp`` where they can.
    """
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from dsim.cli import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            f"cache_dir={tmp / 'cache'}", f"tracking.uri={tracking_uri(tmp)}", "progress=false", "device=cpu",
            *overrides])
    return OmegaConf.to_container(cfg, resolve=True)
