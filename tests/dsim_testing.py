"""Test helpers shared across folders: small real-photo datasets and running the `dsim` command.

A module of its own (not conftest.py): sub-folders have conftest.py files too, and `from conftest import`
would pick whichever was imported first."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import textwrap
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


#: what the ``dsim`` console script runs (``python -m dsim.cli.app`` would make the task a ``__main__`` function,
#: which launchers then pickle by value: not what users run)
DSIM = [sys.executable, "-c", "import sys; from dsim.cli.app import main; sys.exit(main())"]


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

    from dsim.cli.app import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            f"cache_dir={tmp / 'cache'}", f"tracking.uri={tracking_uri(tmp)}", "progress=false", "device=cpu",
            *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def stored_vectors(cache_dir: Path, name: str | None = None) -> int:
    """Vectors in the embedding store of ``cache_dir`` (of identities called ``name``, when given)."""
    from dsim.embeddings.store import identities, open_identity

    return sum(len(open_identity(folder)) for folder in identities(cache_dir)
               if name is None or folder.name.rsplit("-", 1)[0] == name)


def _metrics():
    from dsim.metrics import METRICS

    return METRICS


#: group choices whose configs together hold every key of the shipped groups (the config surface)
CHOICE_SETS = [
    {"extractor": "pixels", "metric": "fid", "pair": "near", "pairing": "nearest", "dataset": "default",
     "analysis": ["umap", "distance"], "task": "cell", "perturb": "blur"},
    {"extractor": "pixels", "metric": "fid", "pair": "near", "pairing": "nearest", "dataset": "default",
     "analysis": ["transfer"], "task": "cell"},
    {"extractor": "pixels", "metric": "fid", "pair": "near", "pairing": "nearest", "dataset": "default",
     "analysis": [], "task": "embed"},
    {"extractor": "pixels", "metric": "fid", "pair": "near", "pairing": "nearest", "dataset": "default",
     "analysis": [], "task": "transfer_study"},
    {"extractor": "pixels", "metric": "fid", "pair": "near", "pairing": "nearest", "dataset": "default",
     "analysis": [], "task": "cell", "generator": "toy"},
    *({"extractor": "pixels", "metric": name, "pair": "near", "pairing": "nearest", "dataset": "default",
       "analysis": [], "task": "cell"} for name in sorted(_metrics())
      if not _metrics()[name].fixed),  # a variant (pplwend) declares its base's parameters, checked once there
]


def config_leaves(node: dict, prefix: str = ""):
    """``(dotted key, default)`` of every value in a config tree (an empty table has none)."""
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from config_leaves(value, path + ".")  # an empty table ({}) has no key to set
        else:
            yield path, value


_DRIVER = textwrap.dedent("""
    import io, json, signal, sys, traceback
    from dsim.cli import app as cli
    base = json.loads(sys.argv[1])

    def alarm(signum, frame):
        raise TimeoutError("case took longer than 120 s")

    signal.signal(signal.SIGALRM, alarm)
    for line in sys.stdin:
        case = json.loads(line)
        err, out, real = io.StringIO(), io.StringIO(), (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = out, err
        code = 0
        keys = {o.split("=", 1)[0] for o in case["overrides"]}
        signal.alarm(120)
        try:
            cli.main([*(o for o in base if o.split("=", 1)[0] not in keys), *case["overrides"]])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            code = "exception"
            traceback.print_exc(file=err)
        finally:
            signal.alarm(0)
            sys.stdout, sys.stderr = real
        print(json.dumps({"code": code, "stderr": err.getvalue()[-3000:]}), flush=True)
""")


class CliWorker:
    """One process that runs ``dsim`` command lines through ``dsim.cli.app.main`` (torch imported once), each
    with its own stderr, within 120 s; ``base`` overrides come first (a case's own win)."""

    def __init__(self, folder: Path, base: list[str], env: dict | None = None):
        self.folder = folder
        self.process = subprocess.Popen([sys.executable, "-c", _DRIVER, json.dumps(base)], cwd=folder,
                                        env=dsim_env(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, overrides: list[str]) -> dict:
        """``{"code": exit status or "exception", "stderr": ...}`` of ``dsim OVERRIDES``."""
        self.process.stdin.write(json.dumps({"overrides": overrides}) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], 180)
        assert ready, f"dsim {' '.join(overrides)}: no answer in 180 s (a hang)"
        line = self.process.stdout.readline()
        assert line, f"dsim {' '.join(overrides)}: the worker died (exit {self.process.poll()})"
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0

