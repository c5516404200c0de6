"""Writing files so that nothing half-written ever survives, and a full disk is one clear line.

Every file dsim writes (records, tables, cache entries, plots' data) goes through
:func:`atomic_write_bytes`: the bytes go to a temporary sibling that is renamed into place, so a reader,
a crash or a full disk leaves either the old file or the new one, never a torn one. A full disk or an
exceeded quota becomes a :class:`~dsim.errors.DiskFullError` naming the path (the CLI prints it as one
``dsim: error:`` line).

Text is encoded as UTF-8 with ``surrogateescape``: a file name that is not valid UTF-8 (kept by Python as
lone surrogates) is written back as the exact bytes it has on disk.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from dsim.errors import DiskFullError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
TEXT_ERRORS = "surrogateescape"  # non-UTF-8 file names round-trip as their bytes


def is_disk_full(error: BaseException) -> bool:
    """True for an ``OSError`` that means no space (or quota) is left."""
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


def disk_full(error: OSError, path: str | os.PathLike) -> DiskFullError:
    """The one-line error for ``error`` (ENOSPC/EDQUOT) while writing ``path``."""
    return DiskFullError(path, error.strerror or "no space left on device")


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and an atomic rename.

    ``durable`` also fsyncs before the rename; cache entries skip that (a torn entry after a power loss
    is detected on read and recomputed). On any failure the temporary file is removed; a full disk
    raises :class:`~dsim.errors.DiskFullError`.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as error:
        if is_disk_full(error):
            raise disk_full(error, path) from None
        raise
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` as UTF-8 (non-UTF-8 file names kept as their bytes)."""
    atomic_write_bytes(path, text.encode("utf-8", TEXT_ERRORS))


def read_text(path: str | os.PathLike) -> str:
    """A text file written by :func:`atomic_write_text` (the same encoding rules)."""
    return Path(path).read_bytes().decode("utf-8", TEXT_ERRORS)
