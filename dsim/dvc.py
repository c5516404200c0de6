"""The DVC side of the default data: after ``dsim data`` writes ``data/``, record it in DVC's cache.

``dvc commit data.dvc`` (never ``--force``) succeeds only when the files match the hashes committed
in ``data.dvc``; then ``dvc status`` reports the data up to date. A mismatch is reported, not hidden.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
    return (f"{dvc_file.name}: WARNING the generated data differs from the committed version "
            f"({reason[-1] if reason else 'dvc commit failed'}); `dvc status` shows it")
