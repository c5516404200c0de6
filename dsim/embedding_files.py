"""Portable embedding files (``.npz``): one dataset's features through one extractor, and their import.

``dsim embed DATASET --out F.npz`` writes them (the DVC pipeline's cached, pushable embedding outputs);
``dsim cache import`` puts them back into the content-addressed cache, so a teammate who ran
``dvc pull`` computes metrics from the team's features without a forward pass.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsim.store import VectorStore
from dsim.fileio import atomic_write_bytes
from dsim.embedding import Embeddings
from dsim.errors import DsimError

SUFFIX = ".npz"


def save_npz(embeddings: Embeddings, path: Path) -> None:
    """Features, ids, hashes and identity of ``embeddings`` in one ``.npz`` (written atomically)."""
    buffer = io.BytesIO()
    np.savez(buffer, features=embeddings.features, ids=np.array(embeddings.ids), hashes=np.array(embeddings.hashes),
             fingerprint=embeddings.fingerprint, extractor=embeddings.extractor,
             extractor_identity=embeddings.extractor_identity, weights_checksum=embeddings.weights_checksum,
             random_weights=embeddings.random_weights)
    atomic_write_bytes(path, buffer.getvalue())


@dataclass(frozen=True)
class Imported:
    path: Path
    extractor: str
    identity: str
    added: int    # vectors new to the store
    present: int  # vectors the store already had


def import_npz(path: Path, cache_dir: str | Path) -> Imported:
    """Put every vector of one embedding file into the cache under its extractor identity."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            features, hashes = npz["features"], [str(h) for h in npz["hashes"]]
            name, identity = str(npz["extractor"]), str(npz["extractor_identity"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        reason = " ".join(str(error).split())[:160] or type(error).__name__
        if "allow_pickle" in reason:  # not an .npz archive: NumPy would have to unpickle it, which dsim never does
            reason = "not an .npz archive of arrays"
        raise DsimError(f"{path}: not an embedding file written by `dsim embed`, or a truncated one ({reason}); "
                        "re-create it with `dsim embed`") from None
    if features.ndim != 2 or features.shape[0] != len(hashes) or features.shape[1] == 0:
        raise DsimError(f"{path}: {features.shape} features for {len(hashes)} images; re-create it with `dsim embed`")
    if features.dtype.kind != "f":
        raise DsimError(f"{path}: features of dtype {features.dtype}, expected floats; re-create it with `dsim embed`")
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        raise DsimError(f"{path}: {int(bad.sum())} of {len(hashes)} feature vectors contain NaN or inf; nothing "
                        "was imported (re-create the file with `dsim embed`)")
    malformed = [h for h in hashes if len(h) != 64 or any(c not in "0123456789abcdef" for c in h)]
    if malformed:
        raise DsimError(f"{path}: {len(malformed)} image hash(es) are not SHA-256 hex (e.g. {malformed[0][:20]!r}); "
                        "re-create it with `dsim embed`")
    known = VectorStore.known_dim(cache_dir, name, identity)
    if known is not None and known != features.shape[1]:
        raise DsimError(f"{path}: {features.shape[1]}-d features, but identity {identity[:16]} of {name} is "
                        f"{known}-d in {cache_dir}; the file is not from that extractor (re-create it with `dsim embed`)")
    store = VectorStore(cache_dir, name, identity, features.shape[1],
                        describe={"name": name, "identity": identity, "dim": int(features.shape[1]),
                                  "imported_from": str(path)})
    first: dict[str, int] = {}
    for row, content_hash in enumerate(hashes):
        first.setdefault(content_hash, row)  # one row per distinct hash, in file order
    rows = list(first.values())
    new = [r for r, have in zip(rows, store.contains([hashes[r] for r in rows])) if not have]
    with store:
        store.append([hashes[r] for r in new], features[new].astype(np.float32))
    added = len(new)
    return Imported(path, name, identity, added, len(hashes) - added)


def find_npz(paths: list[str | Path]) -> list[Path]:
    """The ``.npz`` files among ``paths`` (folders are searched recursively), sorted, each once."""
    found: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            found.update(path.rglob(f"*{SUFFIX}"))
        elif path.is_file():
            found.add(path)
        else:
            raise DsimError(f"{path}: no such file or folder")
    return sorted(found)
