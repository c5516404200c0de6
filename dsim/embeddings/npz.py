"""Portable embedding files (``.npz``): one dataset's features through one extractor, and their import.

``dsim embed DATASET --out F.npz`` writes them (the DVC pipeline's cached, pushable embedding outputs);
``dsim cache import`` puts them back into the content-addressed cache, so a teammate who ran
``dvc pull`` computes metrics from the team's features without a forward pass.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsim.embeddings.embed import Embeddings
from dsim.embeddings.store import VectorStore
from dsim.errors import DsimError
from dsim.util.fileio import atomic_write_bytes, read_arrays

SUFFIX = ".npz"


def save_npz(embeddings: Embeddings, path: Path) -> None:
    """Features, ids, hashes and identity of ``embeddings`` in one ``.npz`` (written atomically), with the
    extractor's description (the identity's preimage: name, layer, width, weights checksum, preprocessing),
    so an import can check that the features fit the identity they claim."""
    describe = getattr(embeddings.store, "describe", None)
    if describe and description_identity(describe) != embeddings.extractor_identity:
        describe = None  # not the identity's preimage (an imported store's note): left out
    buffer = io.BytesIO()
    arrays: dict[str, object] = dict(
        features=embeddings.features,
        ids=np.array(embeddings.ids),
        hashes=np.array(embeddings.hashes),
        fingerprint=embeddings.fingerprint,
        extractor=embeddings.extractor,
        extractor_identity=embeddings.extractor_identity,
        weights_checksum=embeddings.weights_checksum,
        random_weights=embeddings.random_weights,
        **({"describe": np.array(json.dumps(describe, sort_keys=True))} if describe else {}),
    )
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stubs take **kwds as arrays only
    atomic_write_bytes(path, buffer.getvalue())


@dataclass(frozen=True)
class Imported:
    path: Path
    extractor: str
    identity: str
    added: int  # vectors new to the store
    present: int  # vectors the store already had


@dataclass(frozen=True)
class NpzContents:
    """An embedding file that passed every check (:func:`check_npz`)."""

    features: np.ndarray
    hashes: list[str]
    name: str
    identity: str
    describe: dict | None


def description_identity(describe: dict) -> str:
    """The identity an extractor description stands for (as :attr:`Extractor.identity` computes it)."""
    return hashlib.sha256(json.dumps(describe, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _remake(path: Path) -> str:
    return f"{path}: re-create it with `dsim embed`"


def check_npz(path: Path, cache_dir: str | Path) -> NpzContents:
    """Read an embedding file and check it, writing nothing: arrays of the right kinds and shapes, finite
    features, SHA-256 image hashes, and features whose width fits the identity they claim (the identity
    must be the hash of the file's extractor description, or — for files without one, from dsim 0.2 —
    the width one of the named extractor's layers' or the one the store records)."""
    try:
        npz = read_arrays(path, ("features", "hashes", "extractor", "extractor_identity"), optional=("describe",))
        features, hashes = npz["features"], npz["hashes"]
        for key in ("extractor", "extractor_identity", "describe"):
            if key in npz and (npz[key].ndim != 0 or npz[key].dtype.kind != "U"):
                raise ValueError(f"its {key} is not a text")
        if hashes.ndim != 1 or hashes.dtype.kind != "U":
            raise ValueError(f"its hashes are a {hashes.dtype} array of shape {hashes.shape}, not strings")
        hashes = [str(h) for h in hashes]
        name, identity = str(npz["extractor"]), str(npz["extractor_identity"])
        described = str(npz["describe"]) if "describe" in npz else None
    except (OSError, ValueError) as error:
        reason = " ".join(str(error).split())[:160] or type(error).__name__
        raise DsimError(
            f"{path}: not an embedding file written by `dsim embed`, or a truncated one ({reason}); "
            "re-create it with `dsim embed`"
        ) from None
    if features.ndim != 2 or features.shape[0] != len(hashes) or features.shape[1] == 0:
        raise DsimError(f"{path}: {features.shape} features for {len(hashes)} images; re-create it with `dsim embed`")
    if features.dtype.kind != "f":
        raise DsimError(f"{path}: features of dtype {features.dtype}, expected floats; re-create it with `dsim embed`")
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        raise DsimError(
            f"{path}: {int(bad.sum())} of {len(hashes)} feature vectors contain NaN or inf; nothing "
            "was imported (re-create the file with `dsim embed`)"
        )
    malformed = [h for h in hashes if len(h) != 64 or any(c not in "0123456789abcdef" for c in h)]
    if malformed:
        raise DsimError(
            f"{path}: {len(malformed)} image hash(es) are not SHA-256 hex (e.g. {malformed[0][:20]!r}); "
            "re-create it with `dsim embed`"
        )
    if len(identity) != 64 or any(c not in "0123456789abcdef" for c in identity):
        raise DsimError(f"{path}: its extractor identity {identity[:20]!r} is not a SHA-256 digest; {_remake(path)}")
    width = int(features.shape[1])
    known = VectorStore.known_dim(cache_dir, name, identity)
    if known is not None and known != width:
        raise DsimError(
            f"{path}: {width}-d features, but identity {identity[:16]} of {name} is "
            f"{known}-d in {cache_dir}; the file is not from that extractor (re-create it with `dsim embed`)"
        )
    describe = (
        _checked_description(path, described, name=name, identity=identity, width=width)
        if described is not None
        else None
    )
    if describe is None and known is None:
        _check_width_of_named(path, name, width)
    return NpzContents(features, hashes, name, identity, describe)


def _checked_description(path: Path, described: str, *, name: str, identity: str, width: int) -> dict:
    """The file's extractor description, after checking that the identity is its hash and it says ``width``."""
    try:
        describe = json.loads(described)
    except ValueError:
        describe = None
    if not isinstance(describe, dict):
        raise DsimError(f"{path}: its extractor description is not a JSON object; {_remake(path)}")
    if description_identity(describe) != identity:
        raise DsimError(
            f"{path}: its extractor identity {identity[:16]} is not the hash of its extractor "
            f"description (an edited file?); {_remake(path)}"
        )
    if describe.get("dim") != width or describe.get("name") != name:
        raise DsimError(
            f"{path}: {width}-d features of {name!r}, but its identity describes "
            f"{describe.get('dim')}-d features of {describe.get('name')!r}; {_remake(path)}"
        )
    return describe


def _check_width_of_named(path: Path, name: str, width: int) -> None:
    """A file without a description (dsim 0.2): its width must be one a layer of the named extractor has."""
    from dsim.extractors.registry import EXTRACTORS

    cls = EXTRACTORS.get(name)
    widths = sorted({w for w in cls.layers.values() if w}) if cls is not None else []
    if not widths or getattr(cls, "options", {}):  # unknown, or a width that depends on options
        raise DsimError(
            f"{path}: written by an older dsim, without the extractor description that shows its "
            f"{width}-d features fit {name!r}; {_remake(path)}"
        )
    if width not in widths:
        raise DsimError(
            f"{path}: {width}-d features, but extractor {name!r} gives "
            f"{' or '.join(map(str, widths))}-d ones; {_remake(path)}"
        )


def import_npz(path: Path, cache_dir: str | Path, *, contents: NpzContents | None = None) -> Imported:
    """Put every vector of one embedding file into the cache under its extractor identity (after
    :func:`check_npz`, unless its result is passed in)."""
    found = contents or check_npz(path, cache_dir)
    features, hashes, name, identity = found.features, found.hashes, found.name, found.identity
    store = VectorStore(
        cache_dir,
        name,
        identity,
        features.shape[1],
        describe=found.describe
        or {"name": name, "identity": identity, "dim": int(features.shape[1]), "imported_from": str(path)},
    )
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
