"""A folder of chosen images, as links to the originals (or copies), written whole or not at all.

The folder keeps each image's path relative to its dataset (sub-folders, and so labels, survive) and is a
plain image folder to every dsim command and to ``dvc add`` (DVC stores a link's content, not the link).
Links are absolute, so the folder stays valid wherever it is moved on this machine.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from dsim.util.fileio import disk_full, is_disk_full


def write_image_folder(root: Path, relpaths: list[str], destination: Path, *, copy: bool = False) -> Path:
    """``destination`` holding ``root/relpath`` for every ``relpath``, as symlinks (or copies with ``copy``).

    Built beside ``destination`` and renamed into place, so a reader sees the old folder or the new one,
    never a half-written one; a folder there before is replaced."""
    destination = Path(destination)
    building = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        for relpath in relpaths:
            source, target = (Path(root) / relpath).resolve(), building / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            if copy:
                shutil.copy2(source, target)
            else:
                os.symlink(source, target)
        building.mkdir(parents=True, exist_ok=True)  # an empty choice is an empty folder
        old = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:8]}.old")
        if destination.exists():
            destination.rename(old)
        building.rename(destination)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as error:
        shutil.rmtree(building, ignore_errors=True)
        if is_disk_full(error):
            raise disk_full(error, destination) from error
        raise
    return destination
