"""The hash memo: (absolute path, size, mtime_ns, ctime_ns, inode) → SHA-256, so an unchanged file is never
read twice.

Like DVC's state database, a local SQLite file remembers the content hash of every image file dsim has
hashed, keyed by where it is and what ``stat()`` says about it. Listing an unchanged dataset then costs
one ``stat()`` per file and no image bytes; a file whose size, mtime, ctime or inode changed is hashed
again. The ctime is what makes an in-place edit visible even when the mtime is put back (``touch -r``):
every write changes it and no user call can set it. Each row carries a CRC-32 of its fields, checked on
read (a damaged row is ignored: the file is hashed again). ``dsim cache verify DIR`` re-hashes every byte.

- Location: ``$DSIM_STATE_DIR/hashes.sqlite``, default ``$XDG_CACHE_HOME/dsim`` (``~/.cache/dsim``). It is
  a per-machine cache: deleting it only costs re-hashing.
- A file modified less than :data:`RACY_SECONDS` before it was hashed is not memoised (its mtime could
  still change within the same clock tick without the memo noticing, as in git's "racy" check).
- Many processes may use it at once (SQLite WAL mode, a busy timeout); when it cannot be opened or
  written (read-only home, a locked database), dsim hashes without it and says so once — the memo is
  never a reason for a run to fail.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import warnings
import zlib
from pathlib import Path

STATE_FILE = "hashes.sqlite"
RACY_SECONDS = 2.0
BUSY_TIMEOUT_S = 30.0
TABLE = "file_hashes"  # dsim 0.2's table ``hashes`` had no ctime: it is dropped (its rows hashed again)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    path BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    crc INTEGER NOT NULL
) WITHOUT ROWID
"""
_warned = threading.Event()


def state_dir() -> Path:
    """Where the hash memo lives (``DSIM_STATE_DIR``, else ``$XDG_CACHE_HOME/dsim``)."""
    if os.environ.get("DSIM_STATE_DIR"):
        return Path(os.environ["DSIM_STATE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "dsim"


def _signature(stat: os.stat_result) -> tuple[int, int, int, int]:
    return stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino


def _row_crc(path: bytes, signature: tuple, digest: str) -> int:
    return zlib.crc32(f"{signature}{digest}".encode(), zlib.crc32(path))


class HashState:
    """Memoised content hashes of the files under one folder (one range read, one batched write).

    >>> state = HashState.open()                                   # doctest: +SKIP
    >>> # under(): path bytes → ((size, mtime_ns, ctime_ns, inode), sha256)
    >>> known = state.under("/data/photos")                         # doctest: +SKIP
    >>> state.remember([(b"/data/photos/a.png", stat, "ab12...")])  # doctest: +SKIP
    """

    def __init__(self, connection: sqlite3.Connection | None):
        self._db = connection

    @classmethod
    def open(cls) -> HashState:
        """The memo of this machine, or a disabled one (with a single warning) when it cannot be used."""
        if os.environ.get("DSIM_HASH_MEMO", "1").strip().lower() in ("0", "false", "no", "off"):
            return cls(None)
        path = state_dir() / STATE_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            db.execute("DROP TABLE IF EXISTS hashes")
        except (OSError, sqlite3.Error) as error:
            _warn_once(f"hash memo {path} unavailable ({error}); hashing every file")
            return cls(None)
        return cls(db)

    def under(self, root: str | os.PathLike) -> dict[bytes, tuple[tuple[int, int, int, int], str]]:
        """Every memoised file below ``root`` whose row passes its check (path bytes → stat signature, sha256)."""
        if self._db is None:
            return {}
        prefix = os.fsencode(os.path.join(os.fspath(root), ""))
        upper = prefix[:-1] + bytes([prefix[-1] + 1])  # the first key after every "root/..." key
        try:
            rows = self._db.execute(
                f"SELECT path, size, mtime_ns, ctime_ns, inode, sha256, crc FROM {TABLE} WHERE path >= ? AND path < ?",
                (prefix, upper),
            ).fetchall()
        except sqlite3.Error as error:
            _warn_once(f"hash memo unreadable ({error}); hashing every file")
            return {}
        known = {}
        for path, size, mtime, ctime, inode, digest, crc in rows:
            if _row_crc(path, (size, mtime, ctime, inode), digest) == crc:
                known[path] = ((size, mtime, ctime, inode), digest)
        return known

    @staticmethod
    def matches(entry: tuple[tuple[int, int, int, int], str] | None, stat: os.stat_result) -> str | None:
        """The memoised hash when ``entry`` still describes the file ``stat`` describes, else ``None``."""
        if entry is not None and entry[0] == _signature(stat):
            return entry[1]
        return None

    def remember(self, hashed: list[tuple[bytes, os.stat_result, str, float]]) -> None:
        """Memoise (path bytes, stat before hashing, sha256, time hashed) of freshly hashed files.

        A file whose mtime is within :data:`RACY_SECONDS` of when it was hashed is left out.
        """
        if self._db is None or not hashed:
            return
        rows = [
            (path, *_signature(stat), digest, _row_crc(path, _signature(stat), digest))
            for path, stat, digest, when in hashed
            if when - max(stat.st_mtime_ns, stat.st_ctime_ns) / 1e9 > RACY_SECONDS
        ]
        if not rows:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            _warn_once(f"hash memo not updated ({error}); the next listing hashes these files again")

    def forget(self, paths: list[bytes]) -> None:
        """Drop the memo's rows of ``paths`` (found stale)."""
        if self._db is None or not paths:
            return
        try:
            self._db.executemany(f"DELETE FROM {TABLE} WHERE path = ?", [(p,) for p in paths])
        except sqlite3.Error as error:
            _warn_once(f"hash memo not updated ({error}); the next listing hashes these files again")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _warn_once(message: str) -> None:
    if not _warned.is_set():
        _warned.set()
        warnings.warn(message, stacklevel=3)
