"""The DVC side of dsim: where a DVC stage's relative paths point, and recording the default data.

After ``dsim data`` writes ``data/``, ``dvc commit data.dvc`` (never ``--force``) succeeds only when the
files match the hashes committed in ``data.dvc``; then ``dvc status`` reports the data up to date. A
mismatch is reported, not hidden.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: set by DVC for every stage it runs: the project root, also for experiments run in a temporary copy
DVC_ROOT = "DVC_ROOT"
#: set by DVC for ``dvc exp run``: the experiment's name
DVC_EXP_NAME = "DVC_EXP_NAME"


def project_path(path: str | os.PathLike) -> Path:
    """A relative path under the DVC project root when DVC runs us (``$DVC_ROOT``), else as given.

    Queued experiments (``dvc exp run --queue``) run in temporary copies of the project; resolving the
    MLflow store and the embedding cache against the root keeps their runs and features in the project.
    """
    path = Path(path).expanduser()
    root = os.environ.get(DVC_ROOT)
    return Path(root) / path if root and not path.is_absolute() else path


def experiment_name() -> str | None:
    """The DVC experiment being run (``dvc exp run``), if any."""
    return os.environ.get(DVC_EXP_NAME) or None


def sync_tracked(root: Path) -> str:
    """Commit ``root`` to DVC's cache if ``<root>.dvc`` tracks it; return a one-line status message."""
    root = root.resolve()
    dvc_file = root.with_name(root.name + ".dvc")
    if not dvc_file.exists():
        return f"{root.name}: not tracked by DVC (no {dvc_file.name}); `dvc add {root.name}` would track it"
    command = [sys.executable, "-m", "dvc", "commit", "--quiet", dvc_file.name]
    done = subprocess.run(command, cwd=dvc_file.parent, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode == 0:
        return f"{dvc_file.name}: data matches the committed version and is in DVC's cache (`dvc status`: up to date)"
    reason = (done.stderr or done.stdout).strip().splitlines()
    return (
        f"{dvc_file.name}: WARNING the generated data differs from the committed version "
        f"({reason[-1] if reason else 'dvc commit failed'}); `dvc status` shows it"
    )
