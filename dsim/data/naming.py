"""Naming a dataset's images from a user's file: by path relative to the dataset, file stem or content hash.

Score files (``analysis.transfer.scores``) and label files (``otdd``'s ``metric.params.labels``) name
images the way a person does; :func:`match_images` finds the image each name means, and
:func:`image_labels` gives every image of a set its class label.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from dsim.errors import DsimError


def _normalised(name: str) -> str:
    name = str(name).strip().replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name


def match_images(names, relpaths, hashes) -> tuple[np.ndarray, int]:
    """For each image name of a score file, the index of the image it names in ``relpaths`` / ``hashes`` (-1:
    none): by relative path, else by a unique file stem (the name, or the name without its extension; also a
    relative path without the extension), else by content SHA-256 (``sha256:`` prefix allowed, any case). Also
    returns how many names are a stem several images share."""
    by_path = {_normalised(r): i for i, r in enumerate(relpaths)}
    by_stem: dict[str, list[int]] = {}  # the file stem, and the relative path without its extension
    for i, r in enumerate(relpaths):
        path = PurePosixPath(_normalised(r))
        for key in {path.stem, str(path.with_suffix(""))}:
            by_stem.setdefault(key, []).append(i)
    by_hash = {str(h).lower(): i for i, h in enumerate(hashes)}
    found = np.full(len(names), -1, dtype=np.int64)
    ambiguous = 0
    for row, raw in enumerate(names):
        name = _normalised(raw)
        if name in by_path:
            found[row] = by_path[name]
            continue
        stems = by_stem.get(name) or by_stem.get(PurePosixPath(name).stem) or []
        digest = by_hash.get(name.lower().removeprefix("sha256:"))
        if len(stems) == 1:
            found[row] = stems[0]
        elif digest is not None:
            found[row] = digest
        elif len(stems) > 1:
            ambiguous += 1
    return found, ambiguous


def folder_label(relpath: str) -> str | None:
    """An image's first-level sub-folder name (``cats/001.png`` → ``cats``); None at the top of the dataset."""
    parts = PurePosixPath(_normalised(relpath)).parts
    return parts[0] if len(parts) > 1 else None


def image_labels(relpaths, hashes, csv: str | Path | None = None, *, role: str = "") -> np.ndarray:
    """Every image's label: the one ``csv`` gives it (columns ``image,label``; images named as
    :func:`match_images` takes them; one file may label both sets), else its first-level sub-folder."""
    relpaths = list(relpaths)
    labels: list[str | None] = [folder_label(r) for r in relpaths]
    if csv is not None:
        for row, label in zip(*_csv_rows(csv, relpaths, list(hashes))):
            labels[row] = label
    unlabelled = [r for r, label in zip(relpaths, labels) if label is None]
    if unlabelled:
        where = f" nor a row of {csv}" if csv is not None else ""
        raise DsimError(
            f"labels: {len(unlabelled)} {role} image(s) have no label (e.g. {unlabelled[0]} is not in a sub-folder"
            f"{where}); put each class's images in a first-level sub-folder (cats/001.png) or give a CSV "
            "image,label (otdd: metric.params.labels=FILE)"
        )
    return np.asarray(labels, dtype=str)


def _csv_rows(csv: str | Path, relpaths: list, hashes: list) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``relpaths`` a label file names, with their labels."""
    import pandas as pd

    path = Path(csv).expanduser()
    if not path.is_file():
        raise DsimError(f"labels: {path} is not a file; give a CSV with columns image,label")
    table = pd.read_csv(path, dtype=str)
    missing = {"image", "label"} - set(table.columns)
    if missing:
        raise DsimError(f"labels: {path} has no column(s) {', '.join(sorted(missing))}; give image,label")
    found, _ = match_images(table["image"].tolist(), relpaths, hashes)
    return found[found >= 0], table["label"].to_numpy()[found >= 0]
