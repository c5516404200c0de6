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
import hashlib
import os
import tempfile
from pathlib import Path

from dsim.errors import DiskFullError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # what open() would give: temporary files start private (0600)
TEXT_ERRORS = "surrogateescape"  # non-UTF-8 file names round-trip as their bytes


def is_disk_full(error: BaseException) -> bool:
    """True for an ``OSError`` that means no space (or quota) is left."""
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


def disk_full(error: OSError, path: str | os.PathLike | None = None) -> DiskFullError:
    """The one-line error for ``error`` (ENOSPC/EDQUOT) while writing ``path``.

    Without ``path`` (a library's write failed: Hydra saving its config, a log handler), the file is
    looked up in the failing frames: the first ``pathlib.Path`` being written or a ``path``/``filename``
    local, innermost first.
    """
    return DiskFullError(
        path or error.filename or _path_in_traceback(error) or "a file (unknown)",
        error.strerror or "no space left on device",
    )


def _path_in_traceback(error: BaseException) -> str | None:
    frames = []
    tb = error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        names = frame.f_locals
        if isinstance(names.get("output_dir"), (str, Path)) and isinstance(names.get("filename"), str):
            return str(Path(names["output_dir"]) / names["filename"])
        if isinstance(names.get("self"), Path):
            return str(names["self"])
        for name in ("path", "filename", "file", "output_dir"):
            if isinstance(names.get(name), (str, Path)):
                return str(names[name])
    return None


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
            os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as error:
        if is_disk_full(error):
            raise disk_full(error, path) from None
        if isinstance(error, (IsADirectoryError, NotADirectoryError, PermissionError)) or error.errno == errno.EROFS:
            from dsim.errors import DsimError

            what = "it is a folder" if isinstance(error, IsADirectoryError) else error.strerror or str(error)
            raise DsimError(f"cannot write {path}: {what}; choose another file") from None
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


def unique_dir(base: str) -> str:
    """``base``, or ``base-2``, ``base-3``, ... : the first folder that this call creates (atomically).

    The default ``hydra.run.dir`` and ``hydra.sweep.dir`` are ``${dsim_unique_dir:outputs/<date>/<time>}``
    and ``${dsim_unique_dir:multirun/<date>/<time>}``, so two cells (or sweeps) started in the same second
    in one folder still get folders of their own.
    """
    path = Path(base).absolute()  # absolute: a launcher's job may start in another folder
    for n in range(1, 10_000):
        candidate = path if n == 1 else path.with_name(f"{path.name}-{n}")
        try:
            candidate.mkdir(parents=True)
            return str(candidate)
        except FileExistsError:
            continue
    raise DiskFullError(path, "no free folder name")


def lock_dir(folder: str | os.PathLike, name: str, in_use: str):
    """Take ``folder`` for this process: an exclusive lock on its file ``name``, held until :func:`unlock_dir`
    (or the process ends); :class:`~dsim.errors.DsimError` ``in_use`` when another process holds it."""
    from filelock import FileLock, Timeout

    from dsim.errors import DsimError

    path = Path(folder) / name
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DsimError(in_use) from None
    except OSError as error:
        if is_disk_full(error):
            raise disk_full(error, path) from None
        raise
    return lock


def unlock_dir(lock) -> None:
    """Release a :func:`lock_dir` lock and remove its file (the folder is free again)."""
    try:
        Path(lock.lock_file).unlink(missing_ok=True)
    except OSError:
        pass
    lock.release()


_HASH_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_dir(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a folder that exists (made if needed), or a one-line error naming the setting ``what``."""
    from dsim.errors import DsimError

    folder = Path(path)
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise DsimError(f"{what}: cannot make the folder {folder}: {blocker} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        if is_disk_full(error):
            raise disk_full(error) from None
        raise DsimError(f"{what}: cannot make the folder {folder}: {error.strerror or error}") from None
    return folder


class UnreadableArrays(ValueError):
    """An ``.npz`` / ``.npy`` file that is not the arrays it should be (the reason is one short line)."""


def read_arrays(path: str | os.PathLike, names: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> dict:
    """The arrays ``names`` (and those of ``optional`` it has) of an ``.npz`` file, or, with no names, the one
    array of an ``.npy`` file (as ``{"": array}``); never unpickled. A missing file raises
    ``FileNotFoundError``; any other failure — a torn or damaged archive or header, a pickle, a missing
    array — raises :class:`UnreadableArrays`: NumPy's parsers fail in many ways (``ValueError``,
    ``SyntaxError``, ``tokenize.TokenError``, ``zipfile.BadZipFile``, ``EOFError``...) on damaged bytes."""
    import numpy as np

    try:
        with open(path, "rb") as handle:
            loaded = np.load(handle, allow_pickle=False)
            if not names:
                if not isinstance(loaded, np.ndarray):
                    raise UnreadableArrays("an archive, not one array")
                return {"": loaded}
            with loaded:
                missing = [name for name in names if name not in loaded.files]
                if missing:
                    raise UnreadableArrays(f"no {', '.join(missing)} in it")
                return {name: loaded[name] for name in (*names, *(o for o in optional if o in loaded.files))}
    except (FileNotFoundError, UnreadableArrays):
        raise
    except Exception as error:  # noqa: BLE001 - see the docstring: every parse failure means "unreadable"
        reason = " ".join(str(error).split())[:160] or type(error).__name__
        if "allow_pickle" in reason or "Object arrays" in reason:
            reason = "it holds pickled objects, which dsim never unpickles"
        raise UnreadableArrays(reason) from None
