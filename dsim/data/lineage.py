"""Where a dataset's bytes come from: its DVC tracking file, that file's hash and git revision.

A folder is DVC-tracked when it, or a folder above it, is the output of a ``<name>.dvc`` file beside it
(``data/photos_a`` is tracked by ``data.dvc``). The lineage names that file, the md5 DVC recorded for the
tracked folder, the folder's path inside it, and the git commit that last changed the ``.dvc`` file.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class DvcLineage:
    """How DVC tracks a dataset folder (all ``None`` when it does not)."""

    dvc_file: str | None = None
    dvc_md5: str | None = None
    path_in_tracked: str | None = None
    git_revision: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def dvc_lineage(folder: str | Path) -> DvcLineage:
    """Find the ``.dvc`` file that tracks ``folder`` (or a parent of it) and read its md5."""
    folder = Path(folder).resolve()
    for tracked in (folder, *folder.parents):
        if not tracked.name:  # the file-system root
            break
        dvc_file = tracked.with_name(tracked.name + ".dvc")
        if dvc_file.is_file():
            md5 = _tracked_md5(dvc_file, tracked.name)
            if md5 is not None:
                return DvcLineage(
                    dvc_file=str(dvc_file),
                    dvc_md5=md5,
                    path_in_tracked=folder.relative_to(tracked).as_posix(),
                    git_revision=_last_commit(dvc_file),
                )
    return DvcLineage()


def _tracked_md5(dvc_file: Path, out_name: str) -> str | None:
    try:
        spec = yaml.safe_load(dvc_file.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    for out in spec.get("outs") or []:
        if str(out.get("path", "")).rstrip("/") == out_name:
            return out.get("md5")
    return None


def _last_commit(path: Path) -> str | None:
    """The commit that last changed ``path`` (``None`` outside git or when uncommitted)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(path.parent), "log", "-1", "--format=%H", "--", path.name],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None
