"""The embedding store: millions of vectors per extractor identity, in a few large append-only shards.

Layout, per identity: ``<cache_dir>/<name>-<identity[:16]>/`` holds ``meta.json`` (name, identity, dim)
and ``shards/``: triples of files ``<shard>.vec`` (N×dim float32, row-major), ``<shard>.sums`` (N CRC-32s:
each row's bytes, seeded with its key) and ``<shard>.keys`` (N×32 bytes: the images' SHA-256 digests). A
vector is found by its image's content hash; an image is embedded once per extractor, whatever dataset,
pair or grid it is in.

Why shards and not SQLite or LMDB (``benchmarks/bench_store.py`` measures the three): vectors stay
contiguous, so a dataset's features are memory-mapped and streamed in chunks without copying the store;
each writer process appends to shards of its own, so many processes — on one machine or on many machines
sharing a file system — write at once without any lock on the data (SQLite's WAL and LMDB's lock file
both need a local file system); and a store is a handful of large files that DVC pushes and pulls as such.

- **Appending**: a process appends each batch to its own shard: the vectors and their checksums first
  (flushed, and ``fdatasync``-ed for batches), then their keys. Only rows whose key is complete count, so a writer
  killed at any point (``kill -9``) loses nothing it had finished; a new process never appends to an old
  shard. A shard is rolled over at :data:`MAX_SHARD_ROWS` rows.
- **Reading**: the index is every shard's keys (32 bytes per vector), sorted by their first 8 bytes; a
  bulk lookup of a million hashes is a ``searchsorted``. Duplicates (two processes embedding the same
  image) are harmless: identical content gives the same vector, the first is used.
- **Verified reads**: every row read is checked against its checksum. A row that fails (a vector
  overwritten, a flipped bit, rows swapped) raises :class:`CorruptEntries` and is *dropped*: its key is
  overwritten with a tombstone, so no process finds it again and the next embedding recomputes it. Shards
  written before checksums existed (no ``.sums``) are read unverified until ``dsim cache migrate``
  rewrites them with checksums.
- **Leases**: a process that will read an identity's vectors holds a shared ``flock`` on its lease file
  (:meth:`VectorStore.lease`); ``dsim cache gc`` drops entries only under the exclusive lock, so it never
  removes what a running cell is about to read (it waits, or with ``--no-wait`` skips that identity).
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
import errno
import fcntl
import json
import os
import shutil
import socket
import time
import uuid
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from dsim.errors import DsimError
from dsim.util.fileio import atomic_write_text, disk_full, is_disk_full, read_arrays

META_FILE = "meta.json"
SHARDS = "shards"
MEMO_DIR = "memo"
LEASE_FILE = ".lease.lock"
KEY_BYTES = 32
SUM_BYTES = 4  # a CRC-32 per row
TOMBSTONE = bytes(KEY_BYTES)  # the key of a dropped row (no image hashes to 32 zero bytes)
MAX_SHARD_ROWS = 1 << 18  # a writer starts a new shard after this many rows (~2 GB at 2048-d)
SMALL_SHARD_ROWS = 4096  # shards below this are merged when their writers are done
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


class CorruptEntries(DsimError):
    """Stored vectors that failed their checksum (or an old entry that is not a vector): they have been
    dropped from the store, so embedding their images again recomputes them."""

    def __init__(self, directory: Path, hashes: list[str], where: str):
        self.directory, self.hashes = directory, list(hashes)
        super().__init__(
            f"{len(self.hashes)} stored vector(s) in {directory} failed their checksum ({where}): "
            "dropped; embedding those images again recomputes them"
        )


def row_checksums(keys: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """CRC-32 of each row's float32 bytes, seeded with the CRC-32 of its key (so a row moved to another
    key fails too): an (N,) little-endian ``uint32`` array."""
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    return np.fromiter(
        (zlib.crc32(vec, zlib.crc32(key)) for key, vec in zip(keys, vectors)), dtype="<u4", count=len(keys)
    )


@dataclass(frozen=True)
class Shard:
    """One shard's files (``.keys``, ``.vec`` and, unless written before checksums, ``.sums``) and how
    many complete rows it holds."""

    keys: Path
    rows: int

    @property
    def vec(self) -> Path:
        return self.keys.with_suffix(".vec")

    @property
    def sums(self) -> Path:
        return self.keys.with_suffix(".sums")

    @property
    def checked(self) -> bool:
        """Whether its rows carry checksums (shards of dsim 0.2 do not)."""
        return self.sums.exists()

    def files(self) -> list[Path]:
        return [self.vec, self.sums, self.keys]


def _complete_rows(keys: Path, dim: int) -> int:
    """Rows whose vector, checksum and key are all written (``-1`` when the shard is gone)."""
    try:
        n_keys = keys.stat().st_size // KEY_BYTES
        n_vec = keys.with_suffix(".vec").stat().st_size // (4 * dim)
    except FileNotFoundError:
        return -1
    try:
        n_sums = keys.with_suffix(".sums").stat().st_size // SUM_BYTES
    except FileNotFoundError:
        n_sums = n_vec  # a shard from before checksums
    return min(n_keys, n_vec, n_sums)


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
        self._maps: dict[Path, tuple[np.memmap, np.memmap | None]] = {}  # shard → (vectors, row checksums)
        self._check_meta()

    # -- metadata --------------------------------------------------------------------------------------

    @property
    def describe(self) -> dict | None:
        """What the identity stands for (an extractor's :meth:`~dsim.extractors.Extractor.describe`), if given."""
        return self._describe

    def _check_meta(self) -> None:
        meta = self.directory / META_FILE
        try:
            known = json.loads(meta.read_text())
        except (OSError, ValueError):
            return
        if int(known.get("dim", self.dim)) != self.dim:
            raise DsimError(
                f"the store {self.directory} holds {known['dim']}-d vectors of identity {self.identity[:16]}, "
                f"not {self.dim}-d: it belongs to another extractor (or move it aside)"
            )

    def _write_meta(self) -> None:
        meta = self.directory / META_FILE
        if not meta.exists():
            atomic_write_text(
                meta,
                json.dumps(
                    {
                        "format": STORE_FORMAT,
                        "name": self.name,
                        "identity": self.identity,
                        "dim": self.dim,
                        "dtype": "float32",
                        "describe": self._describe,
                    },
                    indent=2,
                    sort_keys=True,
                    default=str,
                )
                + "\n",
            )

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
    def index(self) -> _Index:
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
        unique = np.unique(keys.view(f"V{KEY_BYTES}").ravel()) if len(keys) else np.empty(0, f"V{KEY_BYTES}")
        return [bytes(k).hex() for k in unique] + sorted(k.hex() for k in self.index.recent)

    def contains(self, hashes) -> np.ndarray:
        """Whether each hash has a vector (bool array, in order)."""
        return self.index.locate(digests(hashes))[0] >= 0

    def get(self, content_hash: str) -> np.ndarray | None:
        """One vector (``float32``), or ``None`` when absent (or dropped now for failing its checksum)."""
        if not self.contains([content_hash])[0]:
            return None
        try:
            return self.gather([content_hash])[0]
        except CorruptEntries:
            return None

    def gather(self, hashes, *, missing_ok: bool = False) -> np.ndarray:
        """The vectors of ``hashes`` as an (N, dim) ``float32`` array (rows in order), each verified
        against its checksum: rows that fail are dropped and :class:`CorruptEntries` names them.

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
            raise DsimError(
                f"{int((source < 0).sum())} of {len(keys)} vectors are missing from {self.directory}"
                + _removed_by(self.directory)
            )
        out = np.full((len(keys), self.dim), np.nan, dtype=np.float32)
        bad: list[tuple[int, np.ndarray]] = []
        for s in np.unique(source[source >= 0]):
            picked = np.flatnonzero(source == s)
            rows = row[picked]
            order = np.argsort(rows, kind="stable")  # sequential reads
            vectors, failed = self._read(int(s), rows[order], keys[picked[order]])
            out[picked[order]] = vectors
            if failed.any():
                bad.append((int(s), rows[order][failed]))
        if bad:
            self._drop(bad)
        return out

    def iter_gather(self, hashes, chunk: int = 8192):
        """:meth:`gather` in chunks of ``chunk`` rows (bounded memory for million-image sets).

        The shards' memory maps are dropped after every chunk: pages a map has touched count as the
        process's resident memory until it is unmapped, so streaming a million vectors through one map
        would look like (and, under pressure, compete like) holding them all."""
        hashes = list(hashes)
        for start in range(0, len(hashes), chunk):
            block = self.gather(hashes[start : start + chunk])
            self.release_maps()
            yield block

    def release_maps(self) -> None:
        """Unmap the shards (see :meth:`iter_gather`)."""
        self._maps.clear()

    def _read(self, source: int, rows: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows ``rows`` of one source and a mask of those that failed their check."""
        kind, where = self.index.sources[source]
        if kind == "legacy":
            return self._read_legacy([where[int(r)] for r in rows])
        mapped = self._maps.get(where)
        if mapped is None or int(rows.max()) >= mapped[0].shape[0]:  # new, or grown since (this process's shard)
            n = max(_complete_rows(where, self.dim), 1)
            vec = np.memmap(where.with_suffix(".vec"), dtype="<f4", mode="r", shape=(n, self.dim))
            sums_file = where.with_suffix(".sums")
            sums = np.memmap(sums_file, dtype="<u4", mode="r", shape=(n,)) if sums_file.exists() else None
            mapped = self._maps[where] = (vec, sums)
        vectors = np.asarray(mapped[0][rows], dtype=np.float32)
        if mapped[1] is None:  # written before checksums
            return vectors, np.zeros(len(rows), dtype=bool)
        return vectors, row_checksums(keys, vectors) != np.asarray(mapped[1][rows])

    def _read_legacy(self, files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        """Old one-file-per-vector entries: each must hold ``dim`` finite numbers (never a pickle)."""
        out = np.full((len(files), self.dim), np.nan, dtype=np.float32)
        failed = np.zeros(len(files), dtype=bool)
        for i, path in enumerate(files):
            try:
                vector = read_arrays(path)[""]
                out[i] = np.asarray(vector, dtype=np.float32).reshape(self.dim)
                failed[i] = not np.isfinite(out[i]).all()
            except FileNotFoundError:
                raise
            except (OSError, ValueError, TypeError):  # a pickle, another shape, a torn file
                failed[i] = True
        return out, failed

    def _drop(self, bad: list[tuple[int, np.ndarray]]) -> None:
        """Drop rows that failed their check (tombstone their keys; delete old per-file entries), then
        raise :class:`CorruptEntries` naming their hashes."""
        hashes, where = [], set()
        for source, rows in bad:
            kind, location = self.index.sources[source]
            if kind == "legacy":
                for r in rows:
                    hashes.append(location[int(r)].stem)
                    with contextlib.suppress(OSError):
                        location[int(r)].unlink()
                where.add("old per-file entries")
                continue
            with contextlib.suppress(OSError), open(location, "r+b") as handle:
                for r in rows:
                    handle.seek(int(r) * KEY_BYTES)
                    hashes.append(handle.read(KEY_BYTES).hex())
                    handle.seek(int(r) * KEY_BYTES)
                    handle.write(TOMBSTONE)
            where.add(f"shard {location.stem}")
        self.refresh()
        self._maps.clear()
        raise CorruptEntries(self.directory, sorted(set(hashes)), ", ".join(sorted(where)))

    def verify(self) -> dict:
        """Read every row and check it; rows that fail are dropped. Returns the rows ``checked``, how many
        were ``dropped`` and how many sit in shards written before checksums (``unverified``)."""
        checked = unverified = 0
        bad: list[tuple[int, np.ndarray]] = []
        index = self.index
        for source, (kind, where) in enumerate(index.sources):
            if kind == "legacy":
                rows, keys = np.arange(len(where)), digests([p.stem for p in where])
            else:
                mask = index.source == source
                rows, keys = index.row[mask], index.keys[mask]
                if not where.with_suffix(".sums").exists():
                    unverified += len(rows)
                    continue
            for start in range(0, len(rows), 8192):
                part = slice(start, start + 8192)
                _, failed = self._read(source, rows[part], keys[part])
                checked += len(failed)
                if failed.any():
                    bad.append((source, rows[part][failed]))
            self._maps.clear()
        dropped = sum(len(rows) for _, rows in bad)
        if bad:
            with contextlib.suppress(CorruptEntries):
                self._drop(bad)
        return {"checked": checked, "dropped": dropped, "unverified": unverified}

    @contextlib.contextmanager
    def exclusive(self, *, wait: bool = False):
        """Hold the identity's lease exclusively (no process reading it: see :meth:`lease`); yields whether
        it was obtained (always, with ``wait``)."""
        path = self.directory / LEASE_FILE
        try:
            with _try_lock(path, wait=wait) as locked:
                yield locked
        except OSError as error:
            raise store_write_error(error, path) from None

    def lease(self) -> None:
        """Tell ``dsim cache gc`` that this process reads this identity: a shared ``flock`` on its lease file,
        held until the process exits. It waits while a gc holds the lease exclusively. A store this process
        cannot write (read-only) needs no lease: nothing can drop entries from it either."""
        key = str(self.directory.resolve())
        if key in _LEASES:
            return
        path = self.directory / LEASE_FILE
        handle: IO[bytes]
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a+b")
        except OSError:
            try:
                handle = open(path, "rb")  # a read-only store that has a lease file: a shared lock still works
            except OSError:
                return
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        if not _LEASES:
            atexit.register(release_leases)
        _LEASES[key] = handle

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
                try:
                    self.compact()
                except (OSError, DsimError) as error:  # every vector is stored already: merging can wait
                    warnings.warn(
                        f"small shards of {self.directory} not merged now ({error}); "
                        "`dsim cache compact` merges them later",
                        stacklevel=2,
                    )

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

    def compact(self, *, small: int = SMALL_SHARD_ROWS, keep=None, unchecked: bool = False) -> int:
        """Merge finished shards with fewer than ``small`` rows into one (all shards when ``keep`` is given:
        then only the hashes in ``keep`` survive; the shards written before checksums with ``unchecked``);
        return how many shards were merged. Skipped (0) when another process is compacting."""
        folder = self.directory / SHARDS
        if not folder.is_dir():
            return 0
        with _try_lock(self.directory / ".compact.lock") as locked:
            if not locked:
                return 0
            with contextlib.ExitStack() as held:
                chosen = []
                for shard in self.shards():
                    if shard.checked if unchecked else keep is None and shard.rows >= small:
                        continue
                    handle = held.enter_context(open(shard.keys, "rb"))
                    try:
                        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        continue  # its writer is still appending
                    chosen.append(shard)
                if len(chosen) < (1 if keep is not None or unchecked else 2):
                    return 0
                self._merge(chosen, keep=None if keep is None else digests(keep))
                if keep is not None:
                    shutil.rmtree(self.memo_dir, ignore_errors=True)
        self.refresh()
        return len(chosen)

    def _merge(self, shards: list[Shard], keep: np.ndarray | None) -> None:
        """Copy the rows of ``shards`` (each key once, dropped rows left out, only ``keep`` when given) into
        one new shard, then remove them. Rows of checksummed shards are verified on the way (a row that
        fails is left out: the image is embedded again when needed); a failure (a full disk) removes the
        partial new shard and leaves the old ones as they were."""
        seen: set[bytes] = {TOMBSTONE}
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
                sums = np.fromfile(shard.sums, dtype="<u4", count=shard.rows) if shard.checked else None
                for start in range(0, len(keys), 65536):
                    part = np.flatnonzero(mask[start : start + 65536]) + start
                    if not len(part):
                        continue
                    block = np.asarray(vec[part])
                    if sums is not None:
                        good = row_checksums(keys[part], block) == sums[part]
                        part, block = part[good], block[good]
                    writer.append(keys[part], block, durable=False)
                del vec
            writer.close()
        except BaseException:
            writer.close()
            writer.remove()
            raise
        if writer.rows == 0:
            writer.remove()
        for shard in shards:  # only after the merged shard is complete
            for path in shard.files():
                path.unlink(missing_ok=True)

    def info(self) -> dict:
        """Entries (distinct vectors), shards, files and bytes of this identity (``unchecked``: shards
        written before checksums)."""
        shards = self.shards()
        size = sum(path.stat().st_size for shard in shards for path in shard.files() if path.exists())
        return {
            "name": self.name,
            "identity": self.identity,
            "dim": self.dim,
            "entries": len(self),
            "shards": len(shards),
            "bytes": size,
            "legacy_files": self.index.legacy_count,
            "unchecked_shards": sum(not shard.checked for shard in shards),
        }

    def migrate_legacy(self) -> int:
        """Move the old one-file-per-vector entries of this identity into a shard, and rewrite shards written
        before checksums with them; return how many entries moved. An old entry that is not a vector of
        this width (a pickle, another shape, NaN) is dropped: its image is embedded again when needed."""
        legacy = _legacy_files(self.directory)
        if legacy:
            vectors, failed = self._read_legacy(legacy)
            good = np.flatnonzero(~failed)
            self.append([legacy[i].stem for i in good], vectors[good])
            self.close()
            for path in legacy:
                path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    path.parent.rmdir()
            self.refresh()
        self.compact(unchecked=True)
        return len(legacy)


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
    def load(cls, store: VectorStore) -> _Index:
        for _ in range(5):  # a compaction may remove a shard between listing and reading: list again
            try:
                return cls._load(store)
            except FileNotFoundError:
                time.sleep(0.05)
        return cls._load(store)

    @classmethod
    def _load(cls, store: VectorStore) -> _Index:
        parts: list[np.ndarray] = []
        sources: list[tuple[str, Any]] = []  # ("shard", keys file) or ("legacy", [.npy files])
        source_ids: list[np.ndarray] = []
        rows: list[np.ndarray] = []
        for shard in store.shards():
            keys = np.fromfile(shard.keys, dtype=np.uint8, count=shard.rows * KEY_BYTES).reshape(-1, KEY_BYTES)
            live = np.flatnonzero(keys.any(axis=1))  # dropped rows carry the all-zero tombstone
            parts.append(keys[live])
            source_ids.append(np.full(len(live), len(sources), dtype=np.int32))
            rows.append(live.astype(np.int64))
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
        """Distinct keys (the 8-byte prefixes, unless two of them are equal: then the whole keys)."""
        if not (self.sorted_prefix[1:] == self.sorted_prefix[:-1]).any():
            return len(self.prefix) + len(self.recent)
        return len(np.unique(np.ascontiguousarray(self.keys).view(f"V{KEY_BYTES}").ravel())) + len(self.recent)

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
            self._sums = open(self.keys_path.with_suffix(".sums"), "xb")
            self._keys = open(self.keys_path, "xb")
        except OSError as error:
            raise store_write_error(error, self.folder) from None
        fcntl.flock(self._keys.fileno(), fcntl.LOCK_EX)
        self.rows = 0

    def append(self, keys: np.ndarray, vectors: np.ndarray, *, durable: bool) -> None:
        if self.rows + len(keys) > MAX_SHARD_ROWS and self.rows:
            self.close()
            self._open()
        try:
            self._vec.write(vectors.tobytes())
            self._sums.write(row_checksums(keys, vectors).tobytes())
            self._vec.flush()
            self._sums.flush()
            if durable:  # the rows are on disk before their keys say so
                os.fdatasync(self._vec.fileno())
                os.fdatasync(self._sums.fileno())
            self._keys.write(np.ascontiguousarray(keys).tobytes())
            self._keys.flush()
        except OSError as error:
            raise store_write_error(error, self.keys_path) from None
        self.rows += len(keys)

    def close(self) -> None:
        for handle in (self._vec, self._sums, self._keys):
            if not handle.closed:
                with contextlib.suppress(OSError):
                    handle.flush()
                    os.fsync(handle.fileno())
                handle.close()  # releases the flock

    def remove(self) -> None:
        for suffix in (".keys", ".vec", ".sums"):
            self.keys_path.with_suffix(suffix).unlink(missing_ok=True)


#: lease files this process holds (see :meth:`VectorStore.lease`), open until it exits
_LEASES: dict[str, IO[bytes]] = {}
GC_NOTE = ".gc.json"


def release_leases() -> None:
    """Give up this process's leases (:meth:`VectorStore.lease`): a long-lived session (a notebook) that is
    done reading lets ``dsim cache gc`` proceed; the next :func:`~dsim.embeddings.embed.embed` takes them again."""
    for handle in _LEASES.values():
        handle.close()
    _LEASES.clear()


def store_write_error(error: OSError, path: Path) -> DsimError | OSError:
    """A write into the store that failed: a full disk or a read-only store as one line, else ``error``."""
    if is_disk_full(error):
        return disk_full(error, path)
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return DsimError(
            f"the embedding cache is not writable: {path} ({error.strerror}); embedding the missing "
            "images needs a writable cache_dir (set cache_dir=DIR to one, or embed there first)"
        )
    return error


def note_gc(directory: Path, dropped: int) -> None:
    """Leave a note that ``dsim cache gc`` dropped ``dropped`` entries here (read by a missing-vector error)."""
    note = {
        "dropped": dropped,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with contextlib.suppress(OSError, DsimError):
        atomic_write_text(directory / GC_NOTE, json.dumps(note) + "\n")


def _removed_by(directory: Path) -> str:
    """``; dsim cache gc (pid …) dropped … entries at …`` when a gc note says so, else a hint."""
    for folder in (directory, directory.parent):  # a partial drop, or the whole identity's
        try:
            note = json.loads((folder / GC_NOTE).read_text())
            return (
                f": `dsim cache gc` (pid {note['pid']} on {note['host']}) dropped {note['dropped']} entries "
                f"at {note['time']}; run again to embed them anew"
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return " (removed by another process?); run again to embed them anew"


@contextlib.contextmanager
def _try_lock(path: Path, *, wait: bool = False):
    """``flock`` ``path`` exclusively, without waiting unless ``wait``; yields whether it was obtained."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
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
    return sorted(
        p for p in root.iterdir() if p.is_dir() and ((p / META_FILE).exists() or (p / "extractor.json").exists())
    )


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
        try:
            dim = read_arrays(legacy[0])[""].shape[-1]
        except (OSError, ValueError, IndexError):
            raise DsimError(
                f"{folder}: no dimension recorded and {legacy[0].name} is no vector to read it "
                "from; delete the folder (it is only a cache)"
            ) from None
    store = VectorStore(folder.parent, name, identity, int(dim), describe=meta.get("describe") or meta)
    if store.directory != folder:  # a folder named after a longer identity prefix
        store.directory = folder
    return store
