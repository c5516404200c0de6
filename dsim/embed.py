"""Embedding a dataset: list its images, take what the cache has, forward only the rest.

>>> emb = embed("data/photos_a", extractor="efficientnet_lite0")     # doctest: +SKIP
>>> emb.features.shape, emb.ids[0]                                    # doctest: +SKIP
((100, 1280), '0000.png')
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from dsim.cache import EmbeddingCache
from dsim.errors import DsimError, ImageReadError
from dsim.extractors import Extractor, build
from dsim.images import ImageFileRef, dataset_fingerprint, load_rgb, scan_images

ON_ERROR_CHOICES = ("raise", "skip")
DEFAULT_CACHE_DIR = "cache"


@dataclass
class Embeddings:
    """Features of one dataset seen through one extractor.

    ``features`` is N×D ``float32``; ``ids`` are the images' paths relative to the dataset root, in the
    same order; ``skipped`` lists unreadable images left out (only with ``on_error="skip"``).
    """

    features: np.ndarray
    ids: list[str]
    hashes: list[str]
    root: Path
    fingerprint: str
    extractor: str
    extractor_identity: str
    weights_checksum: str
    random_weights: bool
    n_computed: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    manifest: list[tuple[str, str]] = field(default_factory=list)  # every (relpath, sha256) found

    def __len__(self) -> int:
        return len(self.ids)


class _DecodeDataset(Dataset):
    """Decodes and preprocesses images in DataLoader workers; failures come back as values."""

    def __init__(self, files: list[ImageFileRef], preprocess):
        self.files = files
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        try:
            return index, self.preprocess(load_rgb(self.files[index].path)), None
        except ImageReadError as error:
            return index, None, error.reason


def _collate(items):
    good = [(i, x) for i, x, err in items if err is None]
    failed = [(i, err) for i, _, err in items if err is not None]
    shapes = sorted({tuple(x.shape) for _, x in good})
    if len(shapes) > 1:  # an extractor that keeps the native size (inception without a size) on mixed sizes
        return [i for i, _ in good], shapes, failed  # raised in the main process, as one line
    batch = torch.stack([x for _, x in good]) if good else None
    return [i for i, _ in good], batch, failed


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a one-line error."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DsimError("device=cuda but no CUDA GPU is available (use device=cpu or device=auto)")
    if name != "cpu" and not name.startswith("cuda"):
        raise DsimError(f"unknown device {name!r} (choose from: auto, cpu, cuda)")
    return torch.device(name)


def _count(value, name: str, *, minimum: int) -> int:
    """``value`` as an int ≥ ``minimum``, or a one-line error naming the option."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DsimError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def loader_context():
    """The multiprocessing context for decode workers: fork where the platform has it, else spawn.

    Named explicitly, never the process's default: inside a joblib (loky) worker the default start method
    is loky's, whose processes DataLoader cannot start (``'Process' object has no attribute 'env'``).
    """
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods and sys.platform != "darwin" else "spawn")


def _default_workers(n_images: int, batch_size: int) -> int:
    if n_images <= batch_size:
        return 0
    return min(4, os.cpu_count() or 1)


def embed(
    path: str | os.PathLike,
    extractor: str | Extractor = "efficientnet_lite0",
    *,
    weights: str | None = None,
    device: str = "auto",
    batch_size: int = 32,
    num_workers: int | None = None,
    cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
    on_error: str = "raise",
    progress: bool = True,
) -> Embeddings:
    """Embed every image under ``path`` with ``extractor``, reusing and filling the cache.

    ``extractor`` is a registered name (see ``dsim.extractors.available()``) or an ``Extractor``;
    ``weights`` (``"default"``, ``"random"`` or a checkpoint path) applies to a name. An unreadable
    image raises :class:`~dsim.errors.ImageReadError` naming the file, or with ``on_error="skip"`` is
    left out and listed in ``Embeddings.skipped``.
    """
    if on_error not in ON_ERROR_CHOICES:
        raise DsimError(f"on_error must be one of {', '.join(ON_ERROR_CHOICES)}, got {on_error!r}")
    batch_size = _count(batch_size, "batch_size", minimum=1)
    num_workers = None if num_workers is None else _count(num_workers, "num_workers", minimum=0)
    if isinstance(extractor, str):
        extractor = build(extractor, **({} if weights is None else {"weights": weights}))
    elif weights is not None:
        raise DsimError("pass weights= only with an extractor name, not with an Extractor instance")

    listing = scan_images(path, on_error=on_error, progress=progress)
    files = listing.files
    source = extractor.resolved_weights
    cache = EmbeddingCache(cache_dir, extractor.name, extractor.identity, extractor.dim, extractor.describe())

    vectors: dict[str, np.ndarray] = {}
    todo: dict[str, ImageFileRef] = {}
    for ref in files:
        if ref.sha256 in vectors or ref.sha256 in todo:
            continue
        cached = cache.get(ref.sha256)
        if cached is None:
            todo[ref.sha256] = ref
        else:
            vectors[ref.sha256] = cached

    skipped: dict[str, str] = dict(listing.unreadable)
    failed = []
    if todo:
        failed = _forward(extractor, list(todo.values()), cache, vectors, device=resolve_device(device),
                          batch_size=batch_size, num_workers=num_workers, progress=progress,
                          label=Path(path).name, on_error=on_error)
        skipped.update({ref.relpath: reason for ref, reason in failed})

    kept = [ref for ref in files if ref.sha256 in vectors]
    if on_error == "skip":  # duplicates of a failed file fail too
        skipped.update({ref.relpath: "unreadable image" for ref in files
                        if ref.sha256 not in vectors and ref.relpath not in skipped})
    if not kept:
        raise DsimError(f"no readable images in {path} ({len(skipped)} unreadable)")
    features = np.stack([vectors[ref.sha256] for ref in kept]).astype(np.float32, copy=False)
    return Embeddings(
        features=features,
        ids=[ref.relpath for ref in kept],
        hashes=[ref.sha256 for ref in kept],
        root=Path(path).resolve(),
        fingerprint=dataset_fingerprint(files),
        extractor=extractor.name,
        extractor_identity=extractor.identity,
        weights_checksum=source.checksum,
        random_weights=extractor.is_random,
        n_computed=len(todo) - len(failed),
        skipped=skipped,
        manifest=[(ref.relpath, ref.sha256) for ref in files],
    )


def _forward(extractor, todo, cache, vectors, *, device, batch_size, num_workers, progress, label, on_error):
    """Run the network over ``todo``, writing each batch to the cache as soon as it is done."""
    workers = _default_workers(len(todo), batch_size) if num_workers is None else num_workers
    loader = DataLoader(_DecodeDataset(todo, extractor.preprocess), batch_size=batch_size,
                        num_workers=workers, collate_fn=_collate, pin_memory=device.type == "cuda",
                        multiprocessing_context=loader_context() if workers else None)
    model = extractor.load(device)
    failed = []
    bar = tqdm(total=len(todo), desc=f"embed {label} [{extractor.name}]", unit="img",
               disable=not progress, file=sys.stderr, leave=False)
    with bar, torch.inference_mode():
        for indices, batch, errors in loader:
            for index, reason in errors:
                if on_error == "raise":
                    raise ImageReadError(todo[index].path, reason)
                failed.append((todo[index], reason))
            if isinstance(batch, list):
                raise DsimError(f"images of different sizes ({', '.join(map(str, batch[:3]))}) and extractor "
                                f"{extractor.name} keeps the native size: set extractor.size (e.g. 299)")
            if batch is not None:
                out = extractor.features(model, batch.to(device, non_blocking=True))
                out = out.float().cpu().numpy()
                for index, vector in zip(indices, out):
                    cache.put(todo[index].sha256, vector)
                    vectors[todo[index].sha256] = vector
            bar.update(len(indices) + len(errors))
    return failed
