"""The embedding store: millions of vectors per extractor identity, in a few large append-only shards.

Layout, per identity: ``<cache_dir>/<name>-<identity[:16]>/`` holds ``meta.json`` (name, identity, dim)
and ``shards/``: pairs of files ``<shard>.vec`` (N×dim float32, row-major) and ``<shard>.keys`` (N×32 bytes:
the images' SHA-256 digests). A vector is found by its image's content hash; an image is embedded once per
extractor, whatever dataset, pair or grid it is in.

Why shards and not SQLite or LMDB (``benchmarks/bench_store.py`` measures the three): vectors stay
contiguous, so a dataset's features are memory-mapped and streamed in chunks without copying the store;
each writer process appends to shards of its own, so many processes — on one machine or on many machines
sharing a file system — write at once without any lock on the data (SQLite's WAL and LMDB's lock file
both need a local file system); and a store is a handful of large files that DVC pushes and pulls as such.

- **Appending**: a process appends each batch to its own shard: the vectors first (flushed, and
  ``fdatasync``-ed for batches), then their keys. Only rows whose key is complete count, so a writer
  killed at any point (``kill -9``) loses nothing it had finished; a new process never appends to an old
  shard. A shard is rolled over at :data:`MAX_SHARD_ROWS` rows.
- **Reading**: the index is every shard's keys (32 bytes per vector), sorted by their first 8 bytes; a
  bulk lookup of a million hashes is a ``searchsorted``. Duplicates (two processes embedding the same
  image) are harmless: identical content gives the same vector, the first is used.
- **Compaction**: when a writer closes, shards with fewer than :data:`SMALL_SHARD_ROWS` rows whose writers
  have finished (their ``flock`` is free) are merged into one, so the store keeps about one file pair per
  :data:`SMALL_SHARD_ROWS`+ vectors. Merged files are written under a new name and the small ones removed
  afterwards: at every moment each vector is in some complete shard.
- **Shared file systems**: writers never share a file; compaction and ``dsim cache gc`` use ``flock``
  (POSIX locks over NFSv4, Lustre, GPFS); on a file system without working locks, set
  ``DSIM_STORE_COMPACT=0`` and compact from one machine (``dsim cache compact``).
- **Old caches** (one ``.npy`` file per vector, ``<xx>/<hash>.npy``) are still read; ``dsim cache
  migrate`` moves them into shards.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsim.errors import DsimError
from dsim.fileio import atomic_write_text, disk_full, is_disk_full

META_FILE = "meta.json"
SHARDS = "shards"
MEMO_DIR = "memo"
KEY_BYTES = 32
MAX_SHARD_ROWS = 1 << 18      # a writer starts a new shard after this many rows (~2 GB at 2048-d)
SMALL_SHARD_ROWS = 4096       # shards below this are merged when their writers are done
STORE_FORMAT = 1


def digests(hashes) -> np.ndarray:
    """Hex SHA-256 strings → an (N, 32) ``uint8`` array of their bytes."""
    hashes = list(hashes)
    if not hashes:
        return np.empty((0, KEY_BYTES), dtype=np.uint8)
    try:
        raw = bytes.fromhex("".join(hashes))
    except ValueError:
        raise DsimError("an image hash is not a hex SHA-256 digest") from None
    if len(raw) != KEY_BYTES * len(hashes):
        raise DsimError("an image hash is not a 64-hex-digit SHA-256 digest")
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, KEY_BYTES)


def _prefix(keys: np.ndarray) -> np.ndarray:
    """The first 8 bytes of each key as one big-endian ``uint64`` (the sort key of the index)."""
    return np.ascontiguousarray(keys[:, :8]).view(">u8").ravel().astype(np.uint64)


@dataclass(frozen=True)
class Shard:
    """One ``.vec``/``.keys`` pair and how many complete rows it holds."""

    keys: Path
    rows: int

    @property
    def vec(self) -> Path:
        return self.keys.with_suffix(".vec")


def _complete_rows(keys: Path, dim: int) -> int:
    try:
        n_keys = keys.stat().st_size // KEY_BYTES
        n_vec = keys.with_suffix(".vec").stat().st_size // (4 * dim)
    except FileNotFoundError:
        return -1
    return min(n_keys, n_vec)


def folder_name(name: str, identity: str) -> str:
    """An identity's folder: ``<name>-<identity[:16]>``, a family name's ``/`` spelled ``__``
    (``timm/convnextv2_atto`` → ``timm__convnextv2_atto-…``)."""
    return f"{name.replace('/', '__')}-{identity[:16]}"


class VectorStore:
    """The vectors of one identity (an extractor's, or the entropy's): look up, gather, stream, append.

    >>> store = VectorStore("cache", "pixels", "ab" * 32, dim=768)        # doctest: +SKIP
    >>> store.append(["0f" * 32], np.zeros((1, 768), np.float32))        # doctest: +SKIP
    >>> store.contains(["0f" * 32])                                      # doctest: +SKIP
    array([ True])
    """

    def __init__(self, root: str | os.PathLike, name: str, identity: str, dim: int, describe: dict | None = None):
        self.root = Path(root)
        self.name, self.identity, self.dim = name, identity, int(dim)
        self.directory = self.root / folder_name(name, identity)
        self._describe = describe
        self._index: _Index | None = None
        self._writer: _ShardWriter | None = None
        self._maps: dict[Path, np.memmap] = {}
        self._check_meta()

    # -- metadata --------------------------------------------------------------------------------------

    def _check_meta(self) -> None:
        meta = self.directory / META_FILE
        try:
            known = json.loads(meta.read_text())
        except (OSError, ValueError):
            return
        if int(known.get("dim", self.dim)) != self.dim:
            raise DsimError(f"the store {self.directory} holds {known['dim']}-d vectors of identity {self.identity[:16]}, "
                            f"not {self.dim}-d: it belongs to another extractor (or move it aside)")

    def _write_meta(self) -> None:
        meta = self.directory / META_FILE
        if not meta.exists():
            atomic_write_text(meta, json.dumps({"format": STORE_FORMAT, "name": self.name, "identity": self.identity,
                                                "dim": self.dim, "dtype": "float32", "describe": self._describe},
                                               indent=2, sort_keys=True, default=str) + "\n")

    @staticmethod
    def known_dim(root: str | os.PathLike, name: str, identity: str) -> int | None:
        """The dimension a store records for an identity (``None`` when it has none yet)."""
        directory = Path(root) / folder_name(name, identity)
        for meta in (directory / META_FILE, directory / "extractor.json"):  # extractor.json: the old cache
            try:
                return int(json.loads(meta.read_text())["dim"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return None

    # -- reading ---------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Forget the index: the next lookup sees what other processes have written since."""
        self._index = None

    @property
    def index(self) -> "_Index":
        if self._index is None:
            self._index = _Index.load(self)
        return self._index

    def shards(self) -> list[Shard]:
        """The complete shards of this identity, oldest first."""
        folder = self.directory / SHARDS
        if not folder.is_dir():
            return []
        found = []
        for keys in sorted(folder.glob("*.keys")):
            rows = _complete_rows(keys, self.dim)
            if rows > 0:
                found.append(Shard(keys, rows))
        return found

    def __len__(self) -> int:
        return self.index.size

    def index_hashes(self) -> list[str]:
        """Every distinct content hash the store holds (hex), sorted."""
        keys = np.ascontiguousarray(self.index.keys)
        unique = np.unique(keys.view(f"V{KEY_BYTES}").ravel()) if len(keys) else []
        return [bytes(k).hex() for k in unique] + sorted(k.hex() for k in self.index.recent)

    def contains(self, hashes) -> np.ndarray:
        """Whether each hash has a vector (bool array, in order)."""
        return self.index.locate(digests(hashes))[0] >= 0

    def get(self, content_hash: str) -> np.ndarray | None:
        """One vector (``float32``), or ``None`` when absent."""
        if not self.contains([content_hash])[0]:
            return None
        return self.gather([content_hash])[0]

    def gather(self, hashes, *, missing_ok: bool = False) -> np.ndarray:
        """The vectors of ``hashes`` as an (N, dim) ``float32`` array (rows in order).

        A shard merged away by another process meanwhile is handled by reloading the index.
        """
        keys = digests(hashes)
        for attempt in range(5):
            try:
                return self._gather(keys, missing_ok)
            except FileNotFoundError:
                self.refresh()
                self._maps.clear()
                time.sleep(0.05 * attempt)
        return self._gather(keys, missing_ok)

    def _gather(self, keys: np.ndarray, missing_ok: bool) -> np.ndarray:
        source, row = self.index.locate(keys)
        if not missing_ok and (source < 0).any():
            raise DsimError(f"{int((source < 0).sum())} of {len(keys)} vectors are missing from {self.directory}")
        out = np.full((len(keys), self.dim), np.nan, dtype=np.float32)
        for s in np.unique(source[source >= 0]):
            picked = np.flatnonzero(source == s)
            rows = row[picked]
            order = np.argsort(rows, kind="stable")  # sequential reads
            out[picked[order]] = self._read(int(s), rows[order])
        return out

    def iter_gather(self, hashes, chunk: int = 8192):
        """:meth:`gather` in chunks of ``chunk`` rows (bounded memory for million-image sets).

        The shards' memory maps are dropped after every chunk: pages a map has touched count as the
        process's resident memory until it is unmapped, so streaming a million vectors through one map
        would look like (and, under pressure, compete like) holding them all."""
        hashes = list(hashes)
        for start in range(0, len(hashes), chunk):
            block = self.gather(hashes[start:start + chunk])
            self._maps.clear()
            yield block

    def _read(self, source: int, rows: np.ndarray) -> np.ndarray:
        kind, where = self.index.sources[source]
        if kind == "legacy":
            return np.stack([np.load(where[int(r)], allow_pickle=False).astype(np.float32) for r in rows])
        mapped = self._maps.get(where)
        if mapped is None or int(rows.max()) >= mapped.shape[0]:  # new, or grown since (this process's shard)
            n = _complete_rows(where, self.dim)
            mapped = np.memmap(where.with_suffix(".vec"), dtype="<f4", mode="r", shape=(max(n, 1), self.dim))
            self._maps[where] = mapped
        return np.asarray(mapped[rows], dtype=np.float32)

    # -- writing ---------------------------------------------------------------------------------------

    def append(self, hashes, vectors: np.ndarray, *, durable: bool = True) -> None:
        """Add vectors (one per hash) to this process's shard; finished when this returns."""
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        keys = digests(hashes)
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"expected ({len(keys)}, {self.dim}) vectors, got {vectors.shape}")
        if not len(keys):
            return
        if self._writer is None:
            self._write_meta()
            self._writer = _ShardWriter(self.directory / SHARDS, self.dim)
            atexit.register(self.close)  # a store nobody closed still finishes its shard
        self._writer.append(keys, vectors, durable=durable)
        if self._index is not None:
            self._index.add_recent(keys, self._writer.keys_path, self._writer.rows - len(keys))

    def put(self, content_hash: str, vector) -> None:
        """Add one vector (flushed, not synced: for small per-image values such as entropies)."""
        self.append([content_hash], np.asarray(vector, dtype=np.float32).reshape(1, self.dim), durable=False)

    def close(self) -> None:
        """Finish this process's shard (synced) and merge small finished shards (see the module doc)."""
        for mapped in self._maps.values():
            del mapped
        self._maps.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            atexit.unregister(self.close)
            if os.environ.get("DSIM_STORE_COMPACT", "1") != "0":
                self.compact()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- maintenance -----------------------------------------------------------------------------------

    @property
    def memo_dir(self) -> Path:
        """Where results computed from this identity's vectors are memoised (a dataset's FID statistics):
        valid while entries are only added, cleared when a compaction drops some."""
        return self.directory / MEMO_DIR

    def compact(self, *, small: int = SMALL_SHARD_ROWS, keep=None) -> int:
        """Merge finished shards with fewer than ``small`` rows into one (all shards when ``keep`` is given:
        then only the hashes in ``keep`` survive); return how many shards were merged. Skipped (0) when
        another process is compacting."""
        folder = self.directory / SHARDS
        if not folder.is_dir():
            return 0
        with _try_lock(self.directory / ".compact.lock") as locked:
            if not locked:
                return 0
            with contextlib.ExitStack() as held:
                chosen = []
                for shard in self.shards():
                    if keep is None and shard.rows >= small:
                        continue
                    handle = held.enter_context(open(shard.keys, "rb"))
                    try:
                        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        continue  # its writer is still appending
                    chosen.append(shard)
                if len(chosen) < (1 if keep is not None else 2):
                    return 0
                self._merge(chosen, keep=None if keep is None else digests(keep))
                if keep is not None:
                    shutil.rmtree(self.memo_dir, ignore_errors=True)
        self.refresh()
        return len(chosen)

    def _merge(self, shards: list[Shard], keep: np.ndarray | None) -> None:
        seen: set[bytes] = set()
        wanted = None if keep is None else {bytes(k) for k in keep}
        writer = _ShardWriter(self.directory / SHARDS, self.dim, prefix="c")
        try:
            for shard in shards:
                keys = np.fromfile(shard.keys, dtype=np.uint8, count=shard.rows * KEY_BYTES).reshape(-1, KEY_BYTES)
                mask = np.zeros(len(keys), dtype=bool)
                for i, key in enumerate(map(bytes, keys)):
                    if key not in seen and (wanted is None or key in wanted):
                        seen.add(key)
                        mask[i] = True
                vec = np.memmap(shard.vec, dtype="<f4", mode="r", shape=(shard.rows, self.dim))
                for start in range(0, len(keys), 65536):
                    part = np.flatnonzero(mask[start:start + 65536]) + start
                    if len(part):
                        writer.append(keys[part], np.asarray(vec[part]), durable=False)
                del vec
        finally:
            writer.close()
        if writer.rows == 0:
            writer.remove()
        for shard in shards:  # only after the merged shard is complete
            shard.vec.unlink(missing_ok=True)
            shard.keys.unlink(missing_ok=True)

    def info(self) -> dict:
        """Entries (distinct vectors), shards, files and bytes of this identity."""
        shards = self.shards()
        size = sum(s.keys.stat().st_size + s.vec.stat().st_size for s in shards if s.vec.exists())
        return {"name": self.name, "identity": self.identity, "dim": self.dim, "entries": len(self),
                "shards": len(shards), "bytes": size, "legacy_files": self.index.legacy_count}

    def migrate_legacy(self) -> int:
        """Move the old one-file-per-vector entries of this identity into a shard; return how many."""
        legacy = _legacy_files(self.directory)
        if not legacy:
            return 0
        hashes = [p.stem for p in legacy]
        vectors = np.stack([np.load(p, allow_pickle=False).astype(np.float32).reshape(self.dim) for p in legacy])
        self.append(hashes, vectors)
        self.close()
        for path in legacy:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()
        self.refresh()
        return len(hashes)


class _Index:
    """Every key of an identity's shards (and old per-file entries), sorted for bulk lookups."""

    def __init__(self, keys: np.ndarray, source: np.ndarray, row: np.ndarray, sources: list, legacy_count: int):
        self.prefix = _prefix(keys)
        self.order = np.argsort(self.prefix, kind="stable")
        self.sorted_prefix = self.prefix[self.order]
        self.keys, self.source, self.row, self.sources = keys, source, row, sources
        self.legacy_count = legacy_count
        self.recent: dict[bytes, tuple[int, int]] = {}

    @classmethod
    def load(cls, store: VectorStore) -> "_Index":
        for _ in range(5):  # a compaction may remove a shard between listing and reading: list again
            try:
                return cls._load(store)
            except FileNotFoundError:
                time.sleep(0.05)
        return cls._load(store)

    @classmethod
    def _load(cls, store: VectorStore) -> "_Index":
        parts, sources, source_ids, rows = [], [], [], []
        for shard in store.shards():
            keys = np.fromfile(shard.keys, dtype=np.uint8, count=shard.rows * KEY_BYTES).reshape(-1, KEY_BYTES)
            parts.append(keys)
            source_ids.append(np.full(len(keys), len(sources), dtype=np.int32))
            rows.append(np.arange(len(keys), dtype=np.int64))
            sources.append(("shard", shard.keys))
        legacy = _legacy_files(store.directory)
        if legacy:
            parts.append(digests([p.stem for p in legacy]))
            source_ids.append(np.full(len(legacy), len(sources), dtype=np.int32))
            rows.append(np.arange(len(legacy), dtype=np.int64))
            sources.append(("legacy", legacy))
        if not parts:
            empty = np.empty((0, KEY_BYTES), dtype=np.uint8)
            return cls(empty, np.empty(0, np.int32), np.empty(0, np.int64), sources, 0)
        return cls(np.concatenate(parts), np.concatenate(source_ids), np.concatenate(rows), sources, len(legacy))

    @property
    def size(self) -> int:
        return len(np.unique(self.prefix)) + len(self.recent)

    def add_recent(self, keys: np.ndarray, shard_keys: Path, first_row: int) -> None:
        """Vectors this process just appended (visible to its own lookups without reloading)."""
        source = next((i for i, (kind, where) in enumerate(self.sources) if where == shard_keys), None)
        if source is None:
            source = len(self.sources)
            self.sources.append(("shard", shard_keys))
        for i, key in enumerate(map(bytes, keys)):
            self.recent.setdefault(key, (source, first_row + i))

    def locate(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(source, row) of each key, ``-1`` where absent."""
        source = np.full(len(keys), -1, dtype=np.int32)
        row = np.full(len(keys), -1, dtype=np.int64)
        if len(keys) and len(self.prefix):
            wanted = _prefix(keys)
            at = np.searchsorted(self.sorted_prefix, wanted, side="left")
            hit = at < len(self.sorted_prefix)
            hit[hit] = self.sorted_prefix[at[hit]] == wanted[hit]
            first = np.flatnonzero(hit)
            k = self.order[at[first]]
            same = np.all(self.keys[k] == keys[first], axis=1)  # the whole key, not just its prefix
            source[first[same]], row[first[same]] = self.source[k[same]], self.row[k[same]]
            for i in first[~same]:  # a shared 8-byte prefix (rare): walk the equal prefixes
                j = at[i] + 1
                while j < len(self.order) and self.sorted_prefix[j] == wanted[i]:
                    k2 = self.order[j]
                    if np.array_equal(self.keys[k2], keys[i]):
                        source[i], row[i] = self.source[k2], self.row[k2]
                        break
                    j += 1
        if self.recent:
            for i in np.flatnonzero(source < 0):
                found = self.recent.get(bytes(keys[i]))
                if found is not None:
                    source[i], row[i] = found
        return source, row


class _ShardWriter:
    """Appends to one new shard of this process (holding its ``flock`` while open)."""

    def __init__(self, folder: Path, dim: int, prefix: str = "w"):
        self.folder, self.dim, self.prefix = folder, dim, prefix
        self.rows = 0
        self._open()

    def _open(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            stem = f"{self.prefix}{time.time_ns():x}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            self.keys_path = self.folder / f"{stem}.keys"
            self._vec = open(self.keys_path.with_suffix(".vec"), "xb")
            self._keys = open(self.keys_path, "xb")
        except OSError as error:
            if is_disk_full(error):
                raise disk_full(error, self.folder) from None
            raise
        fcntl.flock(self._keys.fileno(), fcntl.LOCK_EX)
        self.rows = 0

    def append(self, keys: np.ndarray, vectors: np.ndarray, *, durable: bool) -> None:
        if self.rows + len(keys) > MAX_SHARD_ROWS and self.rows:
            self.close()
            self._open()
        try:
            self._vec.write(vectors.tobytes())
            self._vec.flush()
            if durable:
                os.fdatasync(self._vec.fileno())  # the rows are on disk before their keys say so
            self._keys.write(np.ascontiguousarray(keys).tobytes())
            self._keys.flush()
        except OSError as error:
            if is_disk_full(error):
                raise disk_full(error, self.keys_path) from None
            raise
        self.rows += len(keys)

    def close(self) -> None:
        for handle in (self._vec, self._keys):
            if not handle.closed:
                with contextlib.suppress(OSError):
                    handle.flush()
                    os.fsync(handle.fileno())
                handle.close()  # releases the flock

    def remove(self) -> None:
        self.keys_path.unlink(missing_ok=True)
        self.keys_path.with_suffix(".vec").unlink(missing_ok=True)


@contextlib.contextmanager
def _try_lock(path: Path):
    """``flock`` ``path`` without waiting; yields whether it was obtained."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _legacy_files(directory: Path) -> list[Path]:
    """The old cache's one-file-per-vector entries (``<xx>/<hash>.npy``) under an identity folder."""
    if not directory.is_dir():
        return []
    found = []
    for sub in sorted(directory.iterdir()):
        if len(sub.name) == 2 and sub.is_dir() and sub.name != SHARDS:
            found += sorted(p for p in sub.glob("*.npy") if len(p.stem) == 64)
    return found


def identities(cache_dir: str | os.PathLike) -> list[Path]:
    """Every identity folder of a cache (new stores and old per-file caches)."""
    root = Path(cache_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and ((p / META_FILE).exists() or (p / "extractor.json").exists()))


def open_identity(folder: Path) -> VectorStore:
    """The store of an identity folder found by :func:`identities`."""
    for name in (META_FILE, "extractor.json"):
        try:
            meta = json.loads((folder / name).read_text())
            break
        except (OSError, ValueError):
            continue
    else:
        raise DsimError(f"{folder} is not an embedding store (no {META_FILE})")
    identity = meta.get("identity") or folder.name.rsplit("-", 1)[-1]
    name = meta.get("name") or folder.name.rsplit("-", 1)[0]
    dim = meta.get("dim")
    if dim is None:  # an old cache whose extractor.json lacks the dim: read it off an entry
        legacy = _legacy_files(folder)
        if not legacy:
            raise DsimError(f"{folder}: no dimension recorded and no entry to read it from")
        dim = np.load(legacy[0], allow_pickle=False).shape[-1]
    store = VectorStore(folder.parent, name, identity, int(dim), describe=meta.get("describe") or meta)
    if store.directory != folder:  # a folder named after a longer identity prefix
        store.directory = folder
    return store
