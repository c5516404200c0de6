"""Image datasets on disk: discovery, content hashing, fingerprints and decoding to 8-bit RGB.

A dataset is a folder of images, searched recursively; extensions are matched case-insensitively.
Its identity is a fingerprint of its files' relative paths and contents, never of where it lives.

>>> files = list_images("data/photos_a")            # doctest: +SKIP
>>> load_rgb(files[0].path).shape                    # doctest: +SKIP
(128, 128, 3)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

from dsim.errors import DsimError, ImageReadError
from dsim.util.fileio import file_sha256  # noqa: F401  (re-exported: where images are hashed)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
HASH_THREADS = min(8, 2 * (os.cpu_count() or 1))  # parallel hashing of files the memo does not know
PROGRESS_FROM = 2000  # show a hashing progress bar from this many new files

# A truncated file must fail loudly, never decode as half an image.
ImageFile.LOAD_TRUNCATED_IMAGES = False


@dataclass(frozen=True)
class ImageFileRef:
    """One image of a dataset: where it is, its id inside the dataset, and its content hash."""

    path: Path
    relpath: str  # POSIX path relative to the dataset root: the image's id
    sha256: str


def resolve_dataset_dir(path: str | os.PathLike) -> Path:
    """Return ``path`` as an absolute directory, or raise a one-line :class:`DsimError`."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DsimError(f"dataset path does not exist: {root} (run `dsim data` for the default datasets)")
    if not root.is_dir():
        raise DsimError(f"dataset path is not a folder: {root}")
    return root.resolve()


@dataclass(frozen=True)
class Listing:
    """What :func:`scan_images` found: the images (sorted by relative path) and the files it could not read."""

    root: Path
    files: list[ImageFileRef]
    unreadable: dict[str, str]  # relpath → reason (only with on_error="skip")
    stale: list[str] = field(default_factory=list)  # with rehash: files the memo had a wrong hash for


#: listings kept while a :func:`listings_reused` block runs (one cell lists each dataset once)
_REUSED: dict | None = None


@contextlib.contextmanager
def listings_reused():
    """Inside this block each dataset is listed once: a second :func:`scan_images` of the same folder (and
    ``on_error``) returns the first listing. A cell uses it, so its key, its embedding and its analyses
    share one listing; outside it, every call lists anew."""
    global _REUSED
    outer, _REUSED = _REUSED, ({} if _REUSED is None else _REUSED)
    try:
        yield
    finally:
        _REUSED = outer


def scan_images(
    path: str | os.PathLike, *, on_error: str = "raise", progress: bool = False, rehash: bool = False
) -> Listing:
    """All images under ``path`` with their content hashes, taking unchanged files' hashes from the memo.

    Search is recursive; hidden files and folders (names starting with ``.``) are ignored; each real
    folder is visited once, so a symlink loop neither repeats images nor hangs. File names that are not
    valid UTF-8 get ids with ``\\xNN`` escapes (:func:`display_name`; :func:`image_path` maps back). Files
    whose ``(path, size, mtime_ns, ctime_ns, inode)`` the hash memo (:mod:`dsim.data.hash_memo`) knows are not
    read; the others are hashed in parallel threads (``rehash=True``: every file, the memo corrected). A
    file that cannot be read raises :class:`ImageReadError`, or with ``on_error="skip"`` lands in
    :attr:`Listing.unreadable`.
    """
    root = resolve_dataset_dir(path)
    if not rehash and _REUSED is not None and (root, on_error) in _REUSED:
        return _REUSED[root, on_error]
    listing = _scan(root, on_error=on_error, progress=progress, rehash=rehash)
    if _REUSED is not None:
        _REUSED[root, on_error] = listing
    return listing


def rehash_images(path: str | os.PathLike) -> list[str]:
    """Read every byte of the images under ``path`` again (the memo not trusted) and correct the memo;
    return the ids of files whose memoised hash was stale (changed in place with their stat restored)."""
    return _scan(resolve_dataset_dir(path), on_error="skip", progress=True, rehash=True).stale


def _scan(root: Path, *, on_error: str, progress: bool, rehash: bool = False) -> Listing:
    found = _walk(root)
    if not found:
        exts = ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
        raise DsimError(f"no images found in {root} (looked recursively for {exts})")
    digests, unreadable, stale = _hashes(root, found, progress=progress, rehash=rehash)
    if unreadable and on_error != "skip":
        rel = next(iter(unreadable))
        raise ImageReadError(root / rel, unreadable[rel])
    files = [ImageFileRef(path=Path(file), relpath=rel, sha256=digests[rel]) for rel, file in found if rel in digests]
    if not files:
        raise DsimError(f"no readable images in {root} ({len(unreadable)} unreadable)")
    return Listing(root=root, files=files, unreadable=unreadable, stale=stale)


def list_images(path: str | os.PathLike) -> list[ImageFileRef]:
    """All images under ``path`` (recursive, sorted by relative path), with their content hashes.

    See :func:`scan_images`; here an unreadable file is an error.
    """
    return scan_images(path).files


def display_name(name: str) -> str:
    """A file name as dsim shows and records it: itself, or — when it is not valid UTF-8 (Python keeps the
    undecodable bytes as lone surrogates) or holds a backslash — escaped: each undecodable byte written
    ``\\xNN`` and each backslash ``\\\\``. So every table, JSON file and MLflow store can hold it, and no two
    files share an id (``caf\\xe9.png`` is the Latin-1 name, ``caf\\\\xe9.png`` the one literally spelled
    so). :func:`image_path` maps it back to the file."""
    raw = os.fsencode(name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\\" not in text:
        return text
    return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


_ESCAPED = re.compile(rb"\\(\\|x[0-9a-f]{2})")


def _unescape(match: re.Match) -> bytes:
    found = match.group(1)
    return b"\\" if found == b"\\" else bytes([int(found[1:], 16)])


def image_path(root: str | os.PathLike, relpath: str) -> Path:
    """The file of an image id (``relpath``) under ``root``, also for escaped ids (:func:`display_name`)."""
    if "\\" not in relpath:
        return Path(root) / relpath
    return Path(root) / os.fsdecode(_ESCAPED.sub(_unescape, relpath.encode("utf-8")))


#: an image whose longer side exceeds this many times its shorter side is centre-cropped on the longer
#: side to that ratio before it is preprocessed for an extractor (a 20000×1 strip would otherwise be
#: resized to 5120000×256: gigabytes for a 1 kB file)
MAX_ASPECT = 16


def bounded_aspect(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` (H×W×3), or its centre crop to a longer side of at most :data:`MAX_ASPECT` × the shorter one,
    which bounds the memory any resize of it takes (a view, not a copy)."""
    height, width = rgb.shape[:2]
    limit = MAX_ASPECT * max(1, min(height, width))
    if max(height, width) <= limit:
        return rgb
    start = (max(height, width) - limit) // 2
    return rgb[start : start + limit] if height > width else rgb[:, start : start + limit]


def _walk(root: Path) -> list[tuple[str, str]]:
    """``(relpath, path)`` of every image file under ``root``, sorted by relpath; each real folder once."""
    found: list[tuple[str, str]] = []
    seen: set[tuple[int, int]] = set()
    stack = [(os.fspath(root), "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            info = os.stat(directory)
        except OSError:
            continue  # a folder that vanished, or a broken link to one
        if (info.st_dev, info.st_ino) in seen:
            continue  # a symlink back to a folder already listed (e.g. a loop)
        seen.add((info.st_dev, info.st_ino))
        try:
            with os.scandir(directory) as entries:
                children = sorted(entries, key=lambda e: e.name)
        except OSError as error:
            raise DsimError(f"cannot list folder {directory}: {error.strerror or error}") from None
        folders = []
        for entry in children:
            if entry.name.startswith("."):
                continue
            try:
                is_folder = entry.is_dir()  # follows symlinks
            except OSError:
                is_folder = False
            if is_folder:
                folders.append((entry.path, f"{prefix}{display_name(entry.name)}/"))
            elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                found.append((f"{prefix}{display_name(entry.name)}", entry.path))
        stack.extend(reversed(folders))
    found.sort()
    return found


def _hashes(root: Path, found: list[tuple[str, str]], *, progress: bool, rehash: bool = False):
    """Content hash of every found file (memo first, then parallel reads; ``rehash``: all read); the
    unreadable ones; and (with ``rehash``) those whose memoised hash turned out stale."""
    from dsim.data.hash_memo import HashState

    state = HashState.open()
    stale: list[str] = []
    try:
        known = state.under(root)
        digests: dict[str, str] = {}
        unreadable: dict[str, str] = {}
        todo: list[tuple[str, str, os.stat_result]] = []
        memoised: dict[str, str] = {}
        for rel, file in found:
            try:
                info = os.stat(file)
            except OSError as error:
                unreadable[rel] = _reason(error)
                continue
            cached = state.matches(known.get(os.fsencode(file)), info)
            if cached is not None and not rehash:
                digests[rel] = cached
            else:
                todo.append((rel, file, info))
                if cached is not None:
                    memoised[rel] = cached
        if todo:
            fresh = _hash_in_parallel(todo, root=root, progress=progress, unreadable=unreadable)
            digests.update({rel: digest for rel, _, _, digest, _ in fresh})
            stale = sorted(rel for rel, _, _, digest, _ in fresh if memoised.get(rel, digest) != digest)
            state.forget([os.fsencode(file) for rel, file, _, _, _ in fresh if rel in stale])
            state.remember([(os.fsencode(file), info, digest, when) for _, file, info, digest, when in fresh])
    finally:
        state.close()
    return digests, dict(sorted(unreadable.items())), stale


def _hash_in_parallel(todo, *, root: Path, progress: bool, unreadable: dict[str, str]):
    """SHA-256 of each ``(rel, file, stat)`` in ``todo`` on a thread pool (hashlib releases the GIL)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    def one(item):
        rel, file, info = item
        try:
            return rel, file, info, file_sha256(file), time.time()
        except OSError as error:
            return rel, file, info, None, _reason(error)

    workers = min(HASH_THREADS, len(todo))
    done = []
    bar = tqdm(
        total=len(todo),
        desc=f"hash {root.name}",
        unit="file",
        leave=False,
        file=sys.stderr,
        disable=not progress or len(todo) < PROGRESS_FROM,
    )
    with bar, ThreadPoolExecutor(max_workers=workers) as pool:
        for rel, file, info, digest, extra in pool.map(one, todo, chunksize=64):
            if digest is None:
                unreadable[rel] = extra
            else:
                done.append((rel, file, info, digest, extra))
            bar.update()
    return done


def _reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "file vanished or is a broken link"
    return error.strerror or type(error).__name__


def dataset_fingerprint(files: list[ImageFileRef]) -> str:
    """Content fingerprint of a dataset: SHA-256 over its sorted (relative path, content hash) pairs.

    Relative paths are the images' ids (:func:`display_name`: names that are not UTF-8 escaped).
    """
    digest = hashlib.sha256()
    for ref in sorted(files, key=lambda r: r.relpath):
        digest.update(f"{ref.relpath}\0{ref.sha256}\n".encode())
    return digest.hexdigest()


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to an H×W×3 ``uint8`` array, deterministically.

    EXIF orientation is applied. Grayscale and palette images are expanded to RGB; images with
    transparency are composited over white; 16-bit and 32-bit integer images are scaled to 8 bit with
    ``round(v * 255 / 65535)``; float images are taken as [0, 1] and clipped. A corrupt or truncated
    file raises :class:`ImageReadError` naming the file.
    """
    try:
        with Image.open(path) as image, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
            image = ImageOps.exif_transpose(image)
            return np.require(_to_rgb8(image), requirements=["C", "W"])
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageReadError(path, str(error) or type(error).__name__) from error


def _to_rgb8(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("RGB", "L"):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"), dtype=np.uint8)
    if mode.startswith("I"):  # I, I;16, I;16B, I;16L, ...: wide integer grayscale
        wide = np.asarray(image, dtype=np.float64)
        gray = np.clip(np.rint(wide * 255.0 / 65535.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        gray = np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)  # P, 1, CMYK, YCbCr, LAB, HSV
