"""Image datasets on disk: discovery, content hashing, fingerprints and decoding to 8-bit RGB.

A dataset is a folder of images, searched recursively; extensions are matched case-insensitively.
Its identity is a fingerprint of its files' relative paths and contents, never of where it lives.

>>> files = list_images("data/photos_a")            # doctest: +SKIP
>>> load_rgb(files[0].path).shape                    # doctest: +SKIP
(128, 128, 3)
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

from dsim.errors import DsimError, ImageReadError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
_HASH_CHUNK = 1 << 20

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


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_images(path: str | os.PathLike) -> list[ImageFileRef]:
    """All images under ``path`` (recursive, sorted by relative path), with their content hashes.

    Hidden files and folders (names starting with ``.``) are ignored.
    """
    root = resolve_dataset_dir(path)
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            file = Path(dirpath) / name
            found.append((file.relative_to(root).as_posix(), file))
    if not found:
        exts = ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
        raise DsimError(f"no images found in {root} (looked recursively for {exts})")
    found.sort()
    return [ImageFileRef(path=file, relpath=rel, sha256=file_sha256(file)) for rel, file in found]


def dataset_fingerprint(files: list[ImageFileRef]) -> str:
    """Content fingerprint of a dataset: SHA-256 over its sorted (relative path, content hash) pairs."""
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
