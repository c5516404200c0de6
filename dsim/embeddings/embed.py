"""Embedding a dataset: list its images, take what the store has, forward only the rest — once per grid.

>>> emb = embed("data/photos_a", extractor="efficientnet_lite0")     # doctest: +SKIP
>>> emb.features.shape, emb.ids[0]                                    # doctest: +SKIP
((100, 1280), '0000.png')

Parallel cells that need the same dataset through the same extractor take turns: the missing images of
one (dataset, extractor identity) are forwarded under a file lock, and whoever gets the lock second finds
them in the store (:mod:`dsim.embeddings.store`) and forwards nothing. ``Embeddings.n_computed`` is what this call
forwarded, so over a sweep from a cold cache the cells' counts add up to unique images × extractors.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dsim.configs import EmbedSettings
from dsim.data import in_memory
from dsim.data.images import ImageFileRef, bounded_aspect, dataset_fingerprint, load_rgb, scan_images
from dsim.embeddings.store import CorruptEntries, VectorStore, store_write_error
from dsim.errors import DsimError, ImageReadError

ON_ERROR_CHOICES = ("raise", "skip")
DEFAULTS = EmbedSettings()  # the keywords' defaults
DEFAULT_CACHE_DIR = DEFAULTS.cache_dir
LOCK_DIR = ".locks"
STREAM_CHUNK = 8192  # rows per chunk when features are streamed from the store


@dataclass
class Embeddings:
    """Features of one dataset seen through one extractor, kept in the store until asked for.

    ``ids`` are the images' paths relative to the dataset root and ``hashes`` their content SHA-256s, in
    the same order; :attr:`features` is the N×D ``float32`` matrix (gathered from the store on first use);
    :meth:`iter_features` streams it in chunks, :meth:`subset` picks rows without reading the others.
    ``skipped`` lists unreadable images left out (only with ``on_error="skip"``). Stored vectors that fail
    their checksum when read are dropped and, when ``refill`` can forward images again, recomputed
    (one warning line); without it, :class:`~dsim.embeddings.store.CorruptEntries` is raised.
    """

    ids: list[str]
    hashes: list[str]
    root: Path
    fingerprint: str
    extractor: str
    extractor_identity: str
    weights_checksum: str
    random_weights: bool
    store: VectorStore | None = None
    n_computed: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    manifest: list[tuple[str, str]] = field(default_factory=list)  # every (relpath, sha256) found
    refill: Callable[[list[str]], int] | None = field(default=None, repr=False)  # forwards hashes again: how many
    _features: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        if self.store is not None:
            return self.store.dim
        assert self._features is not None  # an Embeddings holds a store or its features
        return int(self._features.shape[1])

    @property
    def features(self) -> np.ndarray:
        """All N×D features (``float32``), read from the store once."""
        if self._features is None:
            self._features = self._gather(self.hashes)
        return self._features

    def iter_features(self, chunk: int = STREAM_CHUNK):
        """The features in consecutive chunks of ``chunk`` rows (memory bounded by the chunk)."""
        if self._features is not None:
            for start in range(0, len(self), chunk):
                yield self._features[start : start + chunk]
            return
        assert self.store is not None
        for start in range(0, len(self), chunk):
            block = self._gather(self.hashes[start : start + chunk])
            self.store.release_maps()  # see VectorStore.iter_gather
            yield block

    def _gather(self, hashes: list[str]) -> np.ndarray:
        """Vectors from the store; rows that fail their checksum are recomputed once, then read again."""
        assert self.store is not None
        try:
            return self.store.gather(hashes)
        except CorruptEntries as bad:
            if self.refill is None:
                raise
            warnings.warn(f"{bad}: recomputing them now", stacklevel=3)
            self.n_computed += self.refill(bad.hashes)
            self.store.refresh()
            return self.store.gather(hashes)

    def subset(self, rows) -> Embeddings:
        """The embeddings of the rows ``rows`` (indices into :attr:`ids`), features still in the store."""
        rows = [int(r) for r in rows]
        picked = dict(ids=[self.ids[r] for r in rows], hashes=[self.hashes[r] for r in rows])
        features = None if self._features is None else self._features[rows]
        return Embeddings(
            **picked,
            root=self.root,
            fingerprint=self.fingerprint,
            extractor=self.extractor,
            extractor_identity=self.extractor_identity,
            weights_checksum=self.weights_checksum,
            random_weights=self.random_weights,
            store=self.store,
            n_computed=self.n_computed,
            skipped=self.skipped,
            manifest=self.manifest,
            refill=self.refill,
            _features=features,
        )


def resolve_device(device="auto"):
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a one-line error."""
    import torch

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
    path,
    extractor="efficientnet_lite0",
    *,
    weights: str | None = None,
    settings: EmbedSettings | None = None,
    device: str = DEFAULTS.device,
    batch_size: int = DEFAULTS.batch_size,
    num_workers: int | None = DEFAULTS.num_workers,
    cache_dir: str | os.PathLike = DEFAULTS.cache_dir,
    on_error: str = DEFAULTS.on_error,
    progress: bool = DEFAULTS.progress,
) -> Embeddings:
    """Embed every image of ``path`` with ``extractor``, reusing and filling the store in ``cache_dir``.

    ``path`` is an image folder, or images in memory (:mod:`dsim.data.in_memory`): a ``uint8`` (or float in
    [0, 1]) numpy array or torch tensor ``(N, H, W, C)``, ``(N, C, H, W)`` or ``(N, H, W)``, a list of PIL
    images or arrays, a torch ``Dataset`` (items: an image or ``(image, label, ...)``) or a ``DataLoader``
    over such batches. In-memory images are written once, losslessly, to a folder named by their content hash
    under ``<cache_dir>/in_memory/`` and embedded from there like any folder (the same images again: nothing
    written, nothing embedded); ``Embeddings.ids`` are then ``00000.png``, ``00001.png``, … in the order given.
    ``extractor`` is a registered name (see ``dsim.extractors.available()``) or an ``Extractor``;
    ``weights`` (``"default"``, ``"random"`` or a checkpoint path) applies to a name. ``settings`` (a
    cell's :class:`~dsim.configs.EmbedSettings`) stands for the six keywords after it. An unreadable
    image raises :class:`~dsim.errors.ImageReadError` naming the file, or with ``on_error="skip"`` is
    left out and listed in ``Embeddings.skipped``.
    """
    keywords = EmbedSettings(device, batch_size, num_workers, cache_dir, on_error, progress)
    extractor, cache_dir, run = _checked(extractor, weights, settings, keywords)
    on_error = run["on_error"]
    label = None
    if not isinstance(path, (str, os.PathLike)):  # images in memory (or a one-line error saying what those are)
        made = in_memory.materialize(path, cache_dir, progress=run["progress"])
        path, label = made.folder, made.name
    listing = scan_images(path, on_error=on_error, progress=run["progress"])
    files = listing.files
    fingerprint = dataset_fingerprint(files)
    store = VectorStore(cache_dir, extractor.name, extractor.identity, extractor.dim, extractor.describe())
    store.lease()  # `dsim cache gc` leaves this identity alone while this process may read it
    skipped: dict[str, str] = dict(listing.unreadable)

    def fill(todo: list[ImageFileRef]) -> tuple[int, list]:
        return _fill(store, extractor, todo, lock=(cache_dir, fingerprint), label=label or Path(path).name, **run)

    computed, failed = fill(files)
    skipped.update({ref.relpath: reason for ref, reason in failed})

    present = store.contains([ref.sha256 for ref in files])
    kept = [ref for ref, ok in zip(files, present) if ok]
    if on_error == "skip":  # duplicates of a failed file fail too
        skipped.update(
            {
                ref.relpath: "unreadable image"
                for ref, ok in zip(files, present)
                if not ok and ref.relpath not in skipped
            }
        )
    if not kept:
        raise DsimError(f"no readable images in {path} ({len(skipped)} unreadable)")
    return Embeddings(
        ids=[ref.relpath for ref in kept],
        hashes=[ref.sha256 for ref in kept],
        root=Path(path).resolve(),
        fingerprint=fingerprint,
        extractor=extractor.name,
        extractor_identity=extractor.identity,
        weights_checksum=extractor.resolved_weights.checksum,
        random_weights=extractor.is_random,
        store=store,
        n_computed=computed,
        skipped=skipped,
        manifest=[(ref.relpath, ref.sha256) for ref in files],
        refill=lambda hashes: fill([ref for ref in files if ref.sha256 in set(hashes)])[0],
    )


def embed_shard(path: str | os.PathLike, extractor, *, shard: int, shards: int, **options) -> dict:
    """Embed shard ``shard`` of ``shards`` of a dataset into the store (the rest is other jobs' work).

    The split is by content hash (an image's shard is its SHA-256's first 16 hex digits modulo
    ``shards``), so it is stable whatever the file names, listing order or machine. Only vectors the store
    lacks are computed: a rerun of a killed shard resumes. Returns a summary: images of the shard, how many
    this call embedded, and the unreadable ones skipped. ``options`` are :func:`embed`'s.
    """
    shards, shard = _count(shards, "task.shards", minimum=1), _count(shard, "task.shard", minimum=0)
    if shard >= shards:
        raise DsimError(f"task.shard must be below task.shards ({shards}), got {shard}")
    weights, settings = options.pop("weights", None), options.pop("settings", None)
    extractor, cache_dir, run = _checked(extractor, weights, settings, EmbedSettings(**options))
    listing = scan_images(path, on_error=run["on_error"], progress=run["progress"])
    mine = [ref for ref in listing.files if int(ref.sha256[:16], 16) % shards == shard]
    store = VectorStore(cache_dir, extractor.name, extractor.identity, extractor.dim, extractor.describe())
    store.lease()
    fingerprint = dataset_fingerprint(listing.files)
    computed, failed = _fill(
        store,
        extractor,
        mine,
        lock=(cache_dir, f"{fingerprint[:16]}-{shard}of{shards}"),
        label=f"{Path(path).name} [{shard + 1}/{shards}]",
        **run,
    )
    return {
        "dataset": str(Path(path).resolve()),
        "fingerprint": fingerprint,
        "shard": shard,
        "shards": shards,
        "extractor": extractor.name,
        "extractor_identity": extractor.identity,
        "images": len(mine),
        "embedded": computed,
        "skipped": {ref.relpath: reason for ref, reason in failed},
    }


def _checked(extractor, weights: str | None, settings: EmbedSettings | None, keywords: EmbedSettings):
    """:func:`embed`'s options checked (``settings`` or the ``keywords``, not both): (the extractor built,
    the cache folder, the options of a forward pass)."""
    from dsim.extractors import build

    if settings is not None and keywords != DEFAULTS:
        raise DsimError("pass the embedding options either as settings= or as keywords, not both")
    chosen = settings or keywords
    device, batch_size, num_workers = chosen.device, chosen.batch_size, chosen.num_workers
    cache_dir, on_error, progress = chosen.cache_dir, chosen.on_error, chosen.progress
    if on_error not in ON_ERROR_CHOICES:
        raise DsimError(f"on_error must be one of {', '.join(ON_ERROR_CHOICES)}, got {on_error!r}")
    if isinstance(extractor, str):
        extractor = build(extractor, **({} if weights is None else {"weights": weights}))
    elif weights is not None:
        raise DsimError("pass weights= only with an extractor name, not with an Extractor instance")
    run = dict(
        device=device,
        batch_size=_count(batch_size, "batch_size", minimum=1),
        num_workers=None if num_workers is None else _count(num_workers, "num_workers", minimum=0),
        progress=progress,
        on_error=on_error,
    )
    return extractor, cache_dir, run


def _fill(
    store: VectorStore,
    extractor,
    files: list[ImageFileRef],
    *,
    lock: tuple,
    device,
    batch_size,
    num_workers,
    progress,
    on_error,
    label,
) -> tuple[int, list]:
    """Forward the ``files`` the store lacks (under the lock of ``lock`` = (cache dir, dataset key)); return
    (images forwarded, failures)."""
    if not _missing(store, files):
        return 0, []
    with _dataset_lock(lock[0], extractor.identity, lock[1], label=label, progress=progress):
        store.refresh()  # another process may have embedded them while we waited
        todo = _missing(store, files)
        if not todo:
            return 0, []
        try:
            failed = _forward(
                extractor,
                todo,
                store,
                device=resolve_device(device),
                batch_size=batch_size,
                num_workers=num_workers,
                progress=progress,
                label=label,
                on_error=on_error,
            )
        finally:
            store.close()
    return len(todo) - len(failed), failed


def _missing(store: VectorStore, files: list[ImageFileRef]) -> list[ImageFileRef]:
    """One file per content hash that the store lacks (in listing order)."""
    unique: dict[str, ImageFileRef] = {}
    for ref in files:
        unique.setdefault(ref.sha256, ref)
    refs = list(unique.values())
    have = store.contains([ref.sha256 for ref in refs])
    return [ref for ref, ok in zip(refs, have) if not ok]


class _dataset_lock:
    """The embedding of one dataset through one extractor identity, one process at a time."""

    def __init__(self, cache_dir, identity: str, dataset_key: str, *, label: str, progress: bool):
        from filelock import FileLock

        self.folder = Path(cache_dir) / LOCK_DIR
        self.lock = FileLock(str(self.folder / f"{identity[:16]}-{dataset_key[:32]}.lock"))
        self.label, self.progress = label, progress

    def __enter__(self):
        from filelock import Timeout

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.lock.acquire(timeout=0)
        except Timeout:  # (a TimeoutError, hence an OSError: caught first)
            if self.progress:
                print(f"waiting: another process is embedding {self.label} with this extractor", file=sys.stderr)
            started = time.monotonic()
            self.lock.acquire()
            if self.progress:
                print(
                    f"{self.label}: embedded by the other process ({time.monotonic() - started:.0f} s)", file=sys.stderr
                )
        except OSError as error:  # a read-only (or full) cache: the images to embed cannot be stored
            raise store_write_error(error, Path(self.lock.lock_file)) from None
        return self

    def __exit__(self, *exc):
        self.lock.release()


class _DecodeDataset:
    """Decodes and preprocesses images in DataLoader workers (extreme aspect ratios centre-cropped first:
    :func:`~dsim.data.images.bounded_aspect`); failures come back as values."""

    def __init__(self, files: list[ImageFileRef], preprocess):
        self.files = files
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        try:
            return index, self.preprocess(bounded_aspect(load_rgb(self.files[index].path))), None
        except ImageReadError as error:
            return index, None, error.reason


def _collate(items):
    import torch

    good = [(i, x) for i, x, err in items if err is None]
    failed = [(i, err) for i, _, err in items if err is not None]
    shapes = sorted({tuple(x.shape) for _, x in good})
    if len(shapes) > 1:  # an extractor that keeps the native size (inception without a size) on mixed sizes
        return [i for i, _ in good], shapes, failed  # raised in the main process, as one line
    batch = torch.stack([x for _, x in good]) if good else None
    return [i for i, _ in good], batch, failed


def _forward(extractor, todo, store, *, device, batch_size, num_workers, progress, label, on_error):
    """Run the network over ``todo``, appending each finished batch to the store before the next one."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    workers = _default_workers(len(todo), batch_size) if num_workers is None else num_workers
    loader = DataLoader(
        _DecodeDataset(todo, extractor.preprocess),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
        multiprocessing_context=loader_context() if workers else None,
    )
    model = extractor.load(device)
    failed = []
    bar = tqdm(
        total=len(todo),
        desc=f"embed {label} [{extractor.name}]",
        unit="img",
        disable=not progress,
        file=sys.stderr,
        leave=False,
    )
    with bar, torch.inference_mode():
        for indices, batch, errors in loader:
            for index, reason in errors:
                if on_error == "raise":
                    raise ImageReadError(todo[index].path, reason)
                failed.append((todo[index], reason))
            if isinstance(batch, list):
                raise DsimError(
                    f"images of different sizes ({', '.join(map(str, batch[:3]))}) and extractor "
                    f"{extractor.name} keeps the native size: set extractor.size (e.g. 299)"
                )
            if batch is not None:
                out = extractor.features(model, batch.to(device, non_blocking=True))
                store.append([todo[i].sha256 for i in indices], out.float().cpu().numpy())
            bar.update(len(indices) + len(errors))
    return failed
