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


#: what the ``dsim`` console script runs (``python -m dsim.cli`` would make the task a ``__main__`` function,
#: which launchers then pickle by value: not what users run)
DSIM = [sys.executable, "-c", "import sys; from dsim.cli import main; sys.exit(main())"]


def dsim_env(env: dict | None = None) -> dict:
    """The environment of a ``dsim`` subprocess: this one's, without a tracking URI, plus ``env``."""
    full_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    full_env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
    return full_env


def run_dsim(*args: str, cwd: Path, env: dict | None = None, check: bool = True,
             timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the ``dsim`` command in a subprocess (the way users run it)."""
    done = subprocess.run([*DSIM, *args], cwd=cwd, env=dsim_env(env), capture_output=True, text=True,
                          timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"dsim {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def start_dsim(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """Start the ``dsim`` command in the background (stdout and stderr piped, text)."""
    return subprocess.Popen([*DSIM, *args], cwd=cwd, env=dsim_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    """The single ``dsim: error:`` line of a failed command (asserting exit 2, one line, no traceback)."""
    errors = [line for line in done.stderr.splitlines() if line.startswith("dsim: error:")]
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    return errors[0]


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


def stored_vectors(cache_dir: Path, name: str | None = None) -> int:
    """Vectors in the embedding store of ``cache_dir`` (of identities called ``name``, when given)."""
    from dsim.store import identities, open_identity

    return sum(len(open_identity(folder)) for folder in identities(cache_dir)
               if name is None or folder.name.rsplit("-", 1)[0] == name)
