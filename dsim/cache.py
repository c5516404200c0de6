"""Content-addressed embedding cache: one entry per (image content hash × extractor identity).

Layout: ``<root>/<extractor name>-<identity[:16]>/<hash[:2]>/<hash>.npy`` plus an ``extractor.json``
describing the identity. An image is embedded once per extractor, whatever dataset, pair or grid it
appears in. Each entry is written to a temporary file and renamed into place, so readers never see a
half-written entry and two processes writing the same entry both leave a valid one. An entry that
cannot be read (e.g. a disk error) counts as missing and is recomputed.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from dsim.fileio import atomic_write_bytes, atomic_write_text


class EmbeddingCache:
    """The cached features of one extractor identity.

    >>> cache = EmbeddingCache("cache", "pixels", identity="ab" * 32, dim=768)   # doctest: +SKIP
    >>> cache.put("0f" * 32, features)                                           # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike, name: str, identity: str, dim: int, describe: dict | None = None):
        self.root = Path(root)
        self.dim = dim
        self.directory = self.root / f"{name}-{identity[:16]}"
        self._describe = describe

    @staticmethod
    def known_dim(root: str | os.PathLike, name: str, identity: str) -> int | None:
        """The feature dimension this cache records for an identity (``None`` when it has no entry yet)."""
        meta = Path(root) / f"{name}-{identity[:16]}" / "extractor.json"
        try:
            return int(json.loads(meta.read_text())["dim"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _entry(self, content_hash: str) -> Path:
        return self.directory / content_hash[:2] / f"{content_hash}.npy"

    def get(self, content_hash: str) -> np.ndarray | None:
        """The cached feature vector, or ``None`` when absent or unreadable."""
        try:
            vector = np.load(self._entry(content_hash), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        return vector if vector.shape == (self.dim,) else None

    def put(self, content_hash: str, vector: np.ndarray) -> None:
        vector = np.asarray(vector, dtype=np.float32)
        if vector.shape != (self.dim,):
            raise ValueError(f"expected a ({self.dim},) feature vector, got {vector.shape}")
        self._write_describe_once()
        buffer = io.BytesIO()
        np.save(buffer, vector, allow_pickle=False)
        atomic_write_bytes(self._entry(content_hash), buffer.getvalue(), durable=False)

    def _write_describe_once(self) -> None:
        if self._describe is None:
            return
        meta = self.directory / "extractor.json"
        if not meta.exists():
            atomic_write_text(meta, json.dumps(self._describe, indent=2, sort_keys=True) + "\n")
        self._describe = None
