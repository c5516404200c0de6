"""Per-image Shannon entropy: the "how much texture" measure behind the entropy-bias check.

The entropy of an image is the Shannon entropy, in bits, of the 256-bin histogram of each RGB channel of
its 8-bit decoding (:func:`dsim.data.images.load_rgb`), averaged over the three channels: 0 for a flat image,
8 for a channel that uses every level equally often. The entropy of an image *pair* is the mean of its
two images' entropies.

Values are cached like embeddings, keyed by the image's content hash, under
``<cache_dir>/entropy-<identity[:16]>/`` (a store like the embeddings', :mod:`dsim.embeddings.store`).

>>> import numpy as np
>>> image_entropy(np.zeros((8, 8, 3), dtype=np.uint8))
0.0
>>> ramp = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)   # every level once
>>> image_entropy(ramp)
8.0
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from dsim.data.images import ImageFileRef, list_images, load_rgb
from dsim.embeddings.store import VectorStore
from dsim.errors import ImageReadError

#: What the cached numbers mean; changing it changes the cache identity.
DEFINITION = {
    "name": "entropy",
    "histogram": "256 bins per RGB channel of the uint8 decoding",
    "unit": "bits",
    "stored": "per-channel entropies (R, G, B)",
    "version": 1,
}
IDENTITY = hashlib.sha256(repr(sorted(DEFINITION.items())).encode()).hexdigest()


def channel_entropies(rgb: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits of each channel's 256-bin histogram of an H×W×3 ``uint8`` image → (3,)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an H×W×3 uint8 image, got shape {rgb.shape} dtype {rgb.dtype}")
    flat = rgb.reshape(-1, 3)
    out = np.empty(3, dtype=np.float64)
    for c in range(3):
        counts = np.bincount(flat[:, c], minlength=256)
        p = counts[counts > 0] / flat.shape[0]
        out[c] = float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: no "-0.0" for flat images
    return out


def image_entropy(rgb: np.ndarray) -> float:
    """Mean over the RGB channels of :func:`channel_entropies` (bits, 0 to 8)."""
    return float(channel_entropies(rgb).mean())


class EntropyCache:
    """Per-channel entropies by image content hash, in a store like the embeddings'.

    >>> cache = EntropyCache("cache")                                    # doctest: +SKIP
    >>> cache.entropy_of(ref)    # an ImageFileRef; decoded only when not cached   # doctest: +SKIP
    5.83...
    """

    def __init__(self, cache_dir: str | os.PathLike):
        self._store = VectorStore(cache_dir, "entropy", IDENTITY, 3, DEFINITION)

    def get(self, content_hash: str) -> float | None:
        cached = self._store.get(content_hash)
        return None if cached is None else float(np.asarray(cached, dtype=np.float64).mean())

    def put(self, content_hash: str, rgb: np.ndarray) -> float:
        """Compute the entropy of an already decoded image, cache it and return it."""
        channels = channel_entropies(rgb).astype(np.float32)  # as stored: first and cached runs agree
        self._store.put(content_hash, channels)
        return float(channels.astype(np.float64).mean())

    def entropy_of(self, ref: ImageFileRef) -> float:
        """The entropy of one image file, from the cache or by decoding it (then cached)."""
        cached = self.get(ref.sha256)
        if cached is not None:
            return cached
        return self.put(ref.sha256, load_rgb(ref.path))


def dataset_entropies(
    path: str | os.PathLike, *, cache_dir: str | os.PathLike = "cache", on_error: str = "raise"
) -> dict[str, float]:
    """Entropy of every image under ``path``, by relative path (unreadable images skipped with ``skip``).

    The per-channel values are kept as float32 (cached or not), so they agree with :func:`image_entropy`
    to ~1e-6 and a cached run gives exactly the numbers of the first one.
    """
    cache = EntropyCache(cache_dir)
    out = {}
    for ref in list_images(path):
        try:
            out[ref.relpath] = cache.entropy_of(ref)
        except ImageReadError:
            if on_error != "skip":
                raise
    return out


def entropies_for(
    root: str | os.PathLike, relpaths, *, cache_dir: str | os.PathLike = "cache", hashes=None
) -> np.ndarray:
    """Entropies of the images ``root/relpath`` (in order); ``hashes`` (content SHA-256s) skip hashing.

    An image that cannot be read gives NaN (it is then left out of any correlation).
    """
    from dsim.data.images import file_sha256, image_path

    cache = EntropyCache(cache_dir)
    values = np.full(len(relpaths), np.nan)
    for i, rel in enumerate(relpaths):
        path = image_path(root, str(rel))
        try:
            digest = hashes[i] if hashes is not None else file_sha256(path)
            values[i] = cache.entropy_of(ImageFileRef(path=path, relpath=str(rel), sha256=digest))
        except (OSError, ImageReadError):
            continue
    return values
