"""In-memory images as a dataset folder: arrays, PIL images, torch datasets and loaders.

Every dataset dsim embeds, compares and records is a folder of image files. :func:`materialize` turns images
held in memory into one: each image is written losslessly (PNG, RGB) as ``00000.png``, ``00001.png``, … in the
order given, into ``<cache_dir>/in_memory/<key>/``, the key being the SHA-256 of the images' pixels and
shapes. The same images give the same folder (written once, reused after), so the hash memo, the embedding
store, fingerprints, cell keys and records treat them like any folder. A folder is written under a temporary
name and renamed into place when complete: two processes writing the same images at once each write their
own copy and the second one is dropped, so no reader ever sees a partial folder.

What counts as images (:func:`is_images`):

- a numpy array or torch tensor ``(N, H, W, C)``, ``(N, C, H, W)`` (``C`` = 1 or 3) or ``(N, H, W)``
  (grayscale). ``uint8`` in 0–255, or floating point in [0, 1] (rounded to 8 bit, as an 8-bit file holds
  it). The channel axis is the one of size 1 or 3; when both could be, a tensor is read channel-first
  (torch's convention) and a numpy array channel-last. A 2-D array is a feature matrix, not images.
- a list or tuple of images: PIL images (any mode, decoded as a file of that mode would be), ``H×W×C`` or
  ``H×W`` arrays, ``C×H×W`` tensors — sizes may differ;
- a torch ``Dataset`` whose items are an image or a tuple (``(image, label, ...)``: the first element) or a
  dict with an ``"image"``/``"img"`` key; or a ``DataLoader`` whose batches are an image batch, a
  ``(images, labels, ...)`` tuple (the default collate of such items) or a list of items. These are read
  one item or batch at a time and streamed to disk, never stacked.

>>> import numpy as np, tempfile
>>> images = np.zeros((3, 8, 8, 3), dtype=np.uint8)
>>> with tempfile.TemporaryDirectory() as cache:
...     made = materialize(images, cache)
...     made.name.startswith("in_memory:"), made.n, sorted(p.name for p in made.folder.glob("*.png"))
(True, 3, ['00000.png', '00001.png', '00002.png'])
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dsim.data.derived import COMPLETE, png_bytes
from dsim.errors import DsimError

KIND = "in_memory"  # the cache sub-folder
VERSION = 1  # bump when the pixels written for the same input change
PREFIX = "in_memory:"  # the name of an in-memory dataset: PREFIX + the key's first 12 hex digits
STALE_TMP_S = 6 * 3600  # a temporary folder untouched this long is a killed writer's: removed
FLOAT_SLACK = 1e-4  # float pixels this far outside [0, 1] are rounding, clipped
ACCEPTED = (
    "images are a (N, H, W, C), (N, C, H, W) or (N, H, W) numpy array or torch tensor (uint8, or float in "
    "[0, 1]), a list of PIL images or arrays, a torch Dataset or a DataLoader"
)


@dataclass(frozen=True)
class InMemoryDataset:
    """The folder in-memory images were written to: its path, a readable name, the content key, the count."""

    folder: Path
    name: str
    key: str
    n: int


def is_images(x: Any) -> bool:
    """Whether ``x`` is meant as in-memory images (rather than a path, a generator or a statistics file):
    an array or tensor (of any shape: :func:`materialize` says what is wrong with it), a PIL image, a list
    or tuple of images or items, a torch ``Dataset`` or ``DataLoader``."""
    if isinstance(x, (str, bytes, os.PathLike, dict)):
        return False
    if isinstance(x, np.ndarray) or _is_tensor(x) or _is_pil(x):
        return True
    if isinstance(x, (list, tuple)):
        return not x or _is_item(x[0])
    return _torch_kind(x) is not None


def materialize(images: Any, cache_dir: str | os.PathLike, *, progress: bool = False) -> InMemoryDataset:
    """The folder of ``images`` under ``<cache_dir>/in_memory/`` (written now unless already there).

    One-line :class:`~dsim.errors.DsimError` for what is not images (saying what is), no images, and pixels
    of a dtype or range that is not 8-bit or [0, 1]. An array or a list is hashed first and written only
    when its folder is missing; a dataset or loader is streamed to a temporary folder once (hashed on the
    way), which is dropped when the folder was there already.
    """
    root = Path(cache_dir) / KIND
    kind = _torch_kind(images)
    if isinstance(images, (np.ndarray, list, tuple)) or _is_tensor(images):
        key, n = _hash(_stream(images))
        made = _reuse(root, key, n)
        if made is not None:
            return made
    elif _is_pil(images):
        raise DsimError("a single PIL image: pass a list of images (or an array of them)")
    elif kind is None:
        raise DsimError(f"cannot read {type(images).__name__} as images: {ACCEPTED}")
    return _write(images, root, progress=progress)


def _reuse(root: Path, key: str, n: int) -> InMemoryDataset | None:
    folder = root / key
    if (folder / COMPLETE).is_file():
        return InMemoryDataset(folder, PREFIX + key[:12], key, n)
    return None


def _hash(images: Iterable[np.ndarray]) -> tuple[str, int]:
    digest, n = _digest(), 0
    for image in images:
        _update(digest, image)
        n += 1
    if not n:
        raise DsimError("no images: the in-memory input is empty")
    return digest.hexdigest(), n


def _digest():
    return hashlib.sha256(f"dsim-in-memory-{VERSION}\n".encode())


def _update(digest, image: np.ndarray) -> None:
    digest.update(f"{image.shape[0]}x{image.shape[1]}\n".encode())
    digest.update(image.tobytes())


def _width(n: int) -> int:
    return max(5, len(str(max(n - 1, 0))))


def _write(images: Any, root: Path, *, progress: bool) -> InMemoryDataset:
    """Stream ``images`` into a temporary folder, then rename it to its content key (or drop it: already there)."""
    from tqdm.auto import tqdm

    root.mkdir(parents=True, exist_ok=True)
    _remove_stale(root)
    total = _length(images)
    guess = _width(total) if total else 5
    tmp = root / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        digest, n = _digest(), 0
        bar = tqdm(
            total=total, desc="write in-memory images", unit="img", disable=not progress, file=sys.stderr, leave=False
        )
        with bar:
            for image in _stream(images):
                _update(digest, image)
                with open(tmp / f"{n:0{guess}d}.png", "wb") as out:
                    out.write(png_bytes(image))
                n += 1
                bar.update()
        if not n:
            raise DsimError("no images: the in-memory input is empty")
        if _width(n) != guess:  # a stream longer (or shorter) than its length said: names sort in order
            for i in range(n):
                os.rename(tmp / f"{i:0{guess}d}.png", tmp / f"{i:0{_width(n)}d}.png")
        key = digest.hexdigest()
        facts = {"kind": KIND, "version": VERSION, "key": key, "images": n, "source": _describe(images)}
        (tmp / COMPLETE).write_text(json.dumps(facts, indent=2) + "\n")
        _publish(tmp, root / key)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when it was renamed into place
    return InMemoryDataset(root / key, PREFIX + key[:12], key, n)


def _publish(tmp: Path, folder: Path) -> None:
    """Rename the complete ``tmp`` to ``folder``, unless a complete ``folder`` is there (then ``tmp`` stays, to
    be removed); a ``folder`` without its marker (not written by dsim) is replaced."""
    for _ in range(2):
        try:
            os.rename(tmp, folder)
            return
        except OSError:
            if (folder / COMPLETE).is_file():
                return  # the same images, written by another call
            shutil.rmtree(folder, ignore_errors=True)
    raise DsimError(f"cannot write the in-memory images to {folder}: remove the folder and try again")


def _remove_stale(root: Path) -> None:
    now = time.time()
    for tmp in root.glob(".tmp-*"):
        try:
            if now - tmp.stat().st_mtime > STALE_TMP_S:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            continue


def _describe(images: Any) -> str:
    kind = f"{type(images).__module__}.{type(images).__qualname__}"
    shape = getattr(images, "shape", None)
    if shape is not None:
        return f"{kind} {tuple(shape)} {images.dtype}"
    return f"{kind} of {len(images)}" if isinstance(images, (list, tuple)) else kind


def _length(images: Any) -> int | None:
    try:
        return len(images.dataset) if _torch_kind(images) == "loader" else len(images)
    except TypeError:
        return None


# -- reading the inputs ----------------------------------------------------------------------------------------


def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")  # no torch imported: no tensor
    return torch is not None and torch.is_tensor(x)


def _is_pil(x: Any) -> bool:
    image = sys.modules.get("PIL.Image")
    return image is not None and isinstance(x, image.Image)


def _is_item(x: Any) -> bool:
    """Whether ``x`` is an image, or an item holding one (a tuple, a dict with an image key)."""
    if isinstance(x, np.ndarray) or _is_tensor(x) or _is_pil(x):
        return True
    if isinstance(x, (list, tuple)):
        return bool(x) and (isinstance(x[0], np.ndarray) or _is_tensor(x[0]) or _is_pil(x[0]))
    return isinstance(x, dict) and any(k in x for k in ("image", "img"))


def _torch_kind(x: Any) -> str | None:
    """``"loader"`` for a DataLoader, ``"dataset"`` for a torch Dataset, else ``None`` (torch not imported)."""
    if "torch" not in sys.modules:
        return None
    from torch.utils.data import DataLoader, Dataset, IterableDataset

    if isinstance(x, DataLoader):
        return "loader"
    return "dataset" if isinstance(x, (Dataset, IterableDataset)) else None


def _stream(images: Any) -> Iterator[np.ndarray]:
    """Every image of ``images`` as a C-contiguous H×W×3 ``uint8`` array, in order."""
    kind = _torch_kind(images)
    if isinstance(images, np.ndarray) or _is_tensor(images):
        yield from _batch(images, "the array")
    elif kind == "loader":
        for b, batch in enumerate(images):
            yield from _loader_batch(batch, f"batch {b}")
    elif kind == "dataset" and hasattr(images, "__len__") and hasattr(images, "__getitem__"):
        for i in range(len(images)):
            yield _one(_image_of(images[i], f"item {i}"), f"item {i}")
    elif kind == "dataset" or isinstance(images, (list, tuple)):
        for i, item in enumerate(images):
            yield _one(_image_of(item, f"item {i}"), f"item {i}")
    else:
        raise DsimError(f"cannot read {type(images).__name__} as images: {ACCEPTED}")


def _image_of(item: Any, where: str) -> Any:
    """The image of a dataset item: itself, a tuple's first element, or a dict's ``image``/``img``."""
    if isinstance(item, (list, tuple)):
        if not item:
            raise DsimError(f"{where} is empty: a dataset item is an image or an (image, label, ...) tuple")
        return item[0]
    if isinstance(item, dict):
        for key in ("image", "img"):
            if key in item:
                return item[key]
        raise DsimError(f"{where} is a dict without an 'image' or 'img' key (keys: {', '.join(map(str, item))})")
    return item


def _loader_batch(batch: Any, where: str) -> Iterator[np.ndarray]:
    """The images of a DataLoader batch: a batch array, ``(images, labels, ...)`` or a list of items."""
    if isinstance(batch, np.ndarray) or _is_tensor(batch):
        yield from _batch(batch, where)
        return
    if isinstance(batch, dict):
        yield from _loader_batch(_image_of(batch, where), where)
        return
    if not isinstance(batch, (list, tuple)):
        raise DsimError(f"{where} is a {type(batch).__name__}: {ACCEPTED}")
    first: Any = batch[0] if batch else None
    if (isinstance(first, np.ndarray) or _is_tensor(first)) and (first.ndim == 4 or _labels_follow(batch)):
        yield from _batch(first, where)  # (images, labels, ...): the default collate of (image, label) items
        return
    for i, item in enumerate(batch):  # a collate_fn that keeps the items
        yield _one(_image_of(item, f"{where}, item {i}"), f"{where}, item {i}")


def _labels_follow(batch) -> bool:
    """Whether ``batch`` is ``(grayscale images N×H×W, labels N, ...)`` rather than a list of images."""
    first, rest = batch[0], batch[1:]
    if first.ndim != 3 or not rest:
        return False
    for other in rest:
        shape = getattr(other, "shape", None)
        if shape is not None:
            if not 1 <= len(shape) <= 2 or shape[0] != first.shape[0]:
                return False
        elif not isinstance(other, (list, tuple)) or len(other) != first.shape[0]:
            return False
    return True


def _numpy(x: Any) -> np.ndarray:
    if _is_tensor(x):
        x = x.detach().cpu()
        if x.is_floating_point() and x.dtype not in (sys.modules["torch"].float32, sys.modules["torch"].float64):
            x = x.float()  # bfloat16, float16: numpy has no bfloat16
        return x.numpy()
    return np.asarray(x)


def _batch(array: Any, where: str) -> Iterator[np.ndarray]:
    """The images of an N×H×W×C, N×C×H×W or N×H×W array or tensor, one at a time."""
    shape, tensor = tuple(array.shape), _is_tensor(array)
    if len(shape) == 2:
        raise DsimError(
            f"{where} is 2-D {shape}: that is a feature matrix (N×D), not images; images are (N, H, W, C), "
            "(N, C, H, W) or (N, H, W)"
        )
    if len(shape) not in (3, 4):
        raise DsimError(f"{where} has shape {shape}: {ACCEPTED}")
    if not shape[0]:
        raise DsimError(f"no images: {where} has shape {shape}")
    last = len(shape) == 3 or _channels_last(shape[1:], tensor=tensor, where=where)
    _check_dtype(array, where)
    for i in range(shape[0]):
        image = _numpy(array[i])
        yield _rgb8(image if last else np.moveaxis(image, 0, -1), f"{where}, image {i}", checked=True)


def _channels_last(shape: tuple, *, tensor: bool, where: str) -> bool:
    """Whether a 3-D image shape is H×W×C (else C×H×W): the axis of 1 or 3 channels; when both ends could be
    one, a tensor is channel-first and an array channel-last."""
    first, last = shape[0] in (1, 3), shape[-1] in (1, 3)
    if first == last:
        if not first:
            raise DsimError(
                f"{where}: an image of shape {shape} has no axis of 1 (grayscale) or 3 (RGB) channels first or "
                "last (RGBA or other channel counts: convert to RGB first)"
            )
        return not tensor
    return last


def _one(image: Any, where: str) -> np.ndarray:
    """One image (PIL, H×W×C / H×W array, C×H×W tensor) as H×W×3 ``uint8``."""
    if _is_pil(image):
        from PIL import ImageOps

        from dsim.data.images import _to_rgb8

        return np.ascontiguousarray(_to_rgb8(ImageOps.exif_transpose(image)))
    if not (isinstance(image, np.ndarray) or _is_tensor(image)):
        raise DsimError(f"{where} is a {type(image).__name__}, not an image: {ACCEPTED}")
    shape = tuple(image.shape)
    if len(shape) == 3 and not _channels_last(shape, tensor=_is_tensor(image), where=where):
        image = image.permute(1, 2, 0) if _is_tensor(image) else np.moveaxis(image, 0, -1)
    elif len(shape) not in (2, 3):
        raise DsimError(f"{where} has shape {shape}: an image is H×W×C or H×W (a tensor C×H×W)")
    return _rgb8(_numpy(image), where, checked=False)


def _check_dtype(array: Any, where: str) -> None:
    """``uint8``, or floating point within [0, 1] (no NaN): else a one-line error."""
    if _is_tensor(array):
        torch = sys.modules["torch"]
        if array.dtype == torch.uint8:
            return
        floating, name = array.is_floating_point(), str(array.dtype).removeprefix("torch.")
    else:
        array = np.asarray(array)
        if array.dtype == np.uint8:
            return
        floating, name = array.dtype.kind == "f", str(array.dtype)
    if not floating:
        raise DsimError(
            f"{where} has dtype {name}: images are uint8 (0-255) or float in [0, 1] (convert 0-255 integers with "
            ".astype('uint8'), other ranges by scaling first)"
        )
    low, high = _bounds(array)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise DsimError(f"{where} holds NaN or infinite pixel values")
    if low < -FLOAT_SLACK or high > 1 + FLOAT_SLACK:
        hint = "divide by 255 or pass uint8" if high > 1 + FLOAT_SLACK else "undo the normalisation"
        raise DsimError(f"{where}: float pixels must be in [0, 1], found [{low:.4g}, {high:.4g}] ({hint})")


def _bounds(array: Any) -> tuple[float, float]:
    """The smallest and largest value (NaN when there is a NaN)."""
    if _is_tensor(array):
        values = array.detach()
        if values.isnan().any():
            return float("nan"), float("nan")
        return float(values.min()), float(values.max())
    return float(np.min(array)), float(np.max(array))  # NaN propagates


def _rgb8(image: np.ndarray, where: str, *, checked: bool) -> np.ndarray:
    """An H×W, H×W×1 or H×W×3 array as contiguous H×W×3 ``uint8`` (floats rounded from [0, 1])."""
    if not checked:
        _check_dtype(image, where)
    if image.ndim == 3 and image.shape[-1] not in (1, 3):
        raise DsimError(f"{where}: {image.shape[-1]} channels; images are RGB (3) or grayscale (1)")
    if not image.shape[0] or not image.shape[1]:
        raise DsimError(f"{where} is empty (shape {image.shape})")
    if image.dtype != np.uint8:
        image = np.rint(np.clip(image.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)
