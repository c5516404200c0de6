"""Resolving an extractor's ``weights`` option to something with a checksum.

``weights`` is ``"default"`` (the extractor's own source: a file shipped by a package, a hub cache),
``"random"`` (the real architecture, randomly initialised with a fixed seed — for plumbing tests only,
never a real result), or a path to a local checkpoint file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dsim.errors import DsimError
from dsim.images import file_sha256

RANDOM_SEED = 0

_checksums: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class WeightsSource:
    """Resolved weights: ``kind`` is ``file``, ``random`` or ``none`` (a model without weights)."""

    kind: str
    checksum: str
    path: Path | None = None


def cached_file_sha256(path: Path) -> str:
    """SHA-256 of a weights file, memoised per (path, size, mtime) for this process."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _checksums:
        _checksums[key] = file_sha256(path)
    return _checksums[key]


def from_file(path: str | os.PathLike, *, extractor: str) -> WeightsSource:
    """A checkpoint file given by the user; a missing file is a one-line error."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DsimError(f"weights file for extractor {extractor!r} not found: {file}")
    return WeightsSource(kind="file", checksum=f"sha256:{cached_file_sha256(file)}", path=file.resolve())


def random_init() -> WeightsSource:
    return WeightsSource(kind="random", checksum=f"random:seed{RANDOM_SEED}")


def no_weights() -> WeightsSource:
    return WeightsSource(kind="none", checksum="none")


def resolve(weights: str, *, extractor: str, default) -> WeightsSource:
    """Resolve a ``weights`` option; ``default`` is a zero-argument callable for ``"default"``."""
    if weights == "random":
        return random_init()
    if weights == "default":
        return default()
    return from_file(weights, extractor=extractor)
