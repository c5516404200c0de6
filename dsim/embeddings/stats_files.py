"""Reference statistics files (``dsim stats DIR --extractor NAME --out ref.npz``): a dataset kept as N, mean
and covariance, with provenance, usable wherever a reference dataset is (``pair.reference=ref.npz``).

The file holds float64 ``n``, ``mean``, ``covariance`` and the centred ``scatter`` (covariance × (N − 1),
kept so the streamed statistics come back bit for bit: FID from the file equals FID from the folder), plus
``meta`` (JSON): the extractor's name, identity and weights checksum, the dataset's content fingerprint,
image count and folder, the dsim version and the time, and ``sha256``: a checksum of the arrays and the
rest of ``meta``, verified on every load (an edited file is a one-line error, never another number under
the original dataset's name). A cell's key includes the checksum of what it read, so a changed file is
never "reused". It is read with ``allow_pickle=False`` (no code). Only metrics with a streamed form
(``MetricSpec.from_stats``: FID) take one; a file from another extractor identity than the cell's is a
one-line error.

The same statistics are memoised beside the store (:func:`memoised_stats`): a stored vector never changes,
so a dataset's statistics through one identity depend only on the multiset of its images' content hashes,
and a warm rerun reads D² numbers instead of N × D (at a million images the scatter is most of a warm
FID's time). They live in ``<identity folder>/memo/fid-stats-<sha256 of the sorted hashes>.npz``, written
atomically with a checksum of their arrays; an unreadable, inconsistent or edited file is recomputed (an
edited one with a warning), and a compaction that drops entries (``dsim cache gc``) clears them.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dsim.errors import DsimError
from dsim.metrics._fid import FeatureStats
from dsim.util.fileio import atomic_write_bytes, read_arrays

if TYPE_CHECKING:
    from dsim.embeddings.embed import Embeddings

SUFFIX = ".npz"
FORMAT = "dsim.stats/2"
UNCHECKED_FORMAT = "dsim.stats/1"  # dsim 0.2: the same arrays, no checksum (read with a warning)


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def content_sha256(arrays: dict[str, np.ndarray], meta: dict | None = None) -> str:
    """SHA-256 over named arrays (name, dtype, shape and bytes, in name order) and ``meta`` without its own
    ``sha256`` (canonical JSON)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{value.dtype.str}:{value.shape}\n".encode())
        digest.update(value.tobytes())
    if meta is not None:
        rest = {k: v for k, v in meta.items() if k != "sha256"}
        digest.update(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class StatsFile:
    """A loaded statistics file: the statistics and where they came from."""

    path: Path
    stats: FeatureStats
    meta: dict
    sha256: str  # of what was read (arrays and meta): part of a cell's key

    @property
    def extractor_identity(self) -> str:
        return self.meta["extractor_identity"]

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    def check_extractor(self, extractor) -> None:
        """One line when these statistics were made through another extractor identity than ``extractor``'s."""
        if self.extractor_identity != extractor.identity:
            raise DsimError(
                f"{self.path} holds statistics of extractor {self.meta['extractor']!r} (identity "
                f"{self.extractor_identity[:12]}), not of this cell's {extractor.name!r} (identity "
                f"{extractor.identity[:12]}); make it with `dsim stats DIR --extractor {extractor.name}`"
            )


def is_stats_file(spec) -> bool:
    """Whether a pair side names a statistics file (``*.npz`` that exists) rather than a folder."""
    path = Path(str(spec)).expanduser()
    return path.suffix == SUFFIX and path.is_file()


def save_stats(
    path: str | Path, stats: FeatureStats, *, extractor, fingerprint: str, root: str | Path, skipped: int = 0
) -> Path:
    """Write ``stats`` with their provenance to ``path`` (atomically)."""
    from dsim import __version__

    meta = {
        "format": FORMAT,
        "extractor": extractor.name,
        "extractor_identity": extractor.identity,
        "weights_checksum": extractor.resolved_weights.checksum,
        "random_weights": extractor.is_random,
        "fingerprint": fingerprint,
        "n_images": stats.n,
        "n_skipped": skipped,
        "root": str(Path(root).resolve()),
        "dsim_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    arrays = {"n": np.int64(stats.n), "mean": stats.mean, "covariance": stats.covariance, "scatter": stats.scatter}
    meta["sha256"] = content_sha256(arrays, meta)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, meta=np.array(json.dumps(meta)))
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_stats(path: str | Path) -> StatsFile:
    """Read a statistics file, or raise one line saying why it is not one."""
    path = Path(path).expanduser()
    try:
        arrays = read_arrays(path, ("n", "mean", "covariance", "scatter", "meta"))
        meta = json.loads(str(arrays.pop("meta")))
        if not isinstance(meta, dict):
            raise ValueError("its meta is not a JSON object")
        if any(arrays[name].dtype.kind not in "fiu" for name in arrays) or arrays["n"].ndim != 0:
            raise ValueError("its arrays are not numbers of the right kinds")
        n = int(arrays["n"])
        mean, scatter = arrays["mean"].astype(np.float64), arrays["scatter"].astype(np.float64)
    except (OSError, ValueError, TypeError) as error:  # UnreadableArrays and JSON errors are ValueErrors
        raise DsimError(
            f"{path} is not a dsim statistics file ({_first_line(error)}); "
            "make one with `dsim stats DIR --extractor NAME --out FILE.npz`"
        ) from None
    remake = f"make it again with `dsim stats DIR --extractor {meta.get('extractor', 'NAME')} --out {path}`"
    if meta.get("format") not in (FORMAT, UNCHECKED_FORMAT):
        raise DsimError(f"{path}: unknown statistics format {meta.get('format')!r} (this dsim reads {FORMAT})")
    sha256 = content_sha256(arrays, meta)
    if meta.get("format") == UNCHECKED_FORMAT:
        warnings.warn(
            f"{path} has no checksum (written by dsim 0.2), so an edit would go unnoticed: {remake}", stacklevel=2
        )
    elif meta.get("sha256") != sha256:
        raise DsimError(
            f"{path}: its statistics or provenance were changed after dsim wrote them (checksum mismatch); {remake}"
        )
    if (
        mean.ndim != 1
        or scatter.shape != (mean.shape[0], mean.shape[0])
        or n < 2
        or not (np.isfinite(mean).all() and np.isfinite(scatter).all())
    ):
        raise DsimError(
            f"{path}: inconsistent statistics (n={n}, mean {mean.shape}, scatter {scatter.shape}); {remake}"
        )
    for key in ("extractor", "extractor_identity", "fingerprint"):
        if not isinstance(meta.get(key), str):
            raise DsimError(f"{path}: its meta has no {key}; {remake}")
    return StatsFile(path, FeatureStats(n, mean, scatter), meta, sha256)


def dataset_stats(path, extractor, **embed_options) -> tuple[FeatureStats, Embeddings]:
    """The streamed statistics of a folder through ``extractor`` (embedding what the store lacks)."""
    from dsim.embeddings.embed import embed

    embeddings = embed(path, extractor, **embed_options)
    return memoised_stats(embeddings), embeddings


def memoised_stats(embeddings) -> FeatureStats:
    """The :class:`FeatureStats` of ``embeddings`` (an :class:`~dsim.embeddings.embed.Embeddings`), read from the
    store's memo when present, else streamed from the store's vectors and memoised."""
    store = embeddings.store
    if store is None or not embeddings.hashes:
        return FeatureStats.of_chunks(embeddings.iter_features())
    key = hashlib.sha256("\n".join(sorted(embeddings.hashes)).encode()).hexdigest()
    path = store.memo_dir / f"fid-stats-{key}{SUFFIX}"
    try:
        arrays = read_arrays(path, ("n", "mean", "scatter", "sha256"))
        recorded = str(arrays.pop("sha256"))
        n, mean, scatter = int(arrays["n"]), arrays["mean"], arrays["scatter"]
        if recorded != content_sha256(arrays):
            warnings.warn(
                f"memoised FID statistics {path} failed their checksum: recomputed from the stored vectors",
                stacklevel=2,
            )
        elif n == len(embeddings.hashes) and mean.shape == (store.dim,) and scatter.shape == (store.dim, store.dim):
            return FeatureStats(n, mean, scatter)
    except (OSError, ValueError, TypeError):
        pass  # absent, unreadable, or from before checksums: recomputed below
    stats = FeatureStats.of_chunks(embeddings.iter_features())
    arrays = {"n": np.int64(stats.n), "mean": stats.mean, "scatter": stats.scatter}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, sha256=np.array(content_sha256(arrays)))
    try:
        atomic_write_bytes(path, buffer.getvalue(), durable=False)
    except (OSError, DsimError):
        pass  # a read-only or full store (DiskFullError): the statistics are still right, only not memoised
    return stats
