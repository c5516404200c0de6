"""Reference statistics files (``dsim stats DIR --extractor NAME --out ref.npz``): a dataset kept as N, mean
and covariance, with provenance, usable wherever a reference dataset is (``pair.reference=ref.npz``).

The file holds float64 ``n``, ``mean``, ``covariance`` and the centred ``scatter`` (covariance × (N − 1),
kept so the streamed statistics come back bit for bit: FID from the file equals FID from the folder), plus
``meta`` (JSON): the extractor's name, identity and weights checksum, the dataset's content fingerprint,
image count and folder, the dsim version and the time. It is read with ``allow_pickle=False`` (no code).
Only metrics with a streamed form (``MetricSpec.from_stats``: FID) take one; a file from another extractor
identity than the cell's is a one-line error.

The same statistics are memoised beside the store (:func:`memoised_stats`): a stored vector never changes,
so a dataset's statistics through one identity depend only on the multiset of its images' content hashes,
and a warm rerun reads D² numbers instead of N × D (at a million images the scatter is most of a warm
FID's time). They live in ``<identity folder>/memo/fid-stats-<sha256 of the sorted hashes>.npz``, written
atomically; an unreadable or inconsistent file is recomputed, and a compaction that drops entries
(``dsim cache gc``) clears them.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsim.errors import DsimError
from dsim.fileio import atomic_write_bytes
from dsim.metrics.frechet import FeatureStats

SUFFIX = ".npz"
FORMAT = "dsim.stats/1"


@dataclass(frozen=True)
class StatsFile:
    """A loaded statistics file: the statistics and where they came from."""

    path: Path
    stats: FeatureStats
    meta: dict

    @property
    def extractor_identity(self) -> str:
        return self.meta["extractor_identity"]

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    def check_extractor(self, extractor) -> None:
        """One line when these statistics were made through another extractor identity than ``extractor``'s."""
        if self.extractor_identity != extractor.identity:
            raise DsimError(f"{self.path} holds statistics of extractor {self.meta['extractor']!r} (identity "
                            f"{self.extractor_identity[:12]}), not of this cell's {extractor.name!r} (identity "
                            f"{extractor.identity[:12]}); make it with `dsim stats DIR --extractor {extractor.name}`")


def is_stats_file(spec) -> bool:
    """Whether a pair side names a statistics file (``*.npz`` that exists) rather than a folder."""
    path = Path(str(spec)).expanduser()
    return path.suffix == SUFFIX and path.is_file()


def save_stats(path: str | Path, stats: FeatureStats, *, extractor, fingerprint: str, root: str | Path,
               skipped: int = 0) -> Path:
    """Write ``stats`` with their provenance to ``path`` (atomically)."""
    from dsim import __version__

    meta = {"format": FORMAT, "extractor": extractor.name, "extractor_identity": extractor.identity,
            "weights_checksum": extractor.resolved_weights.checksum, "random_weights": extractor.is_random,
            "fingerprint": fingerprint, "n_images": stats.n, "n_skipped": skipped, "root": str(Path(root).resolve()),
            "dsim_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    buffer = io.BytesIO()
    np.savez(buffer, n=np.int64(stats.n), mean=stats.mean, covariance=stats.covariance, scatter=stats.scatter,
             meta=np.array(json.dumps(meta)))
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_stats(path: str | Path) -> StatsFile:
    """Read a statistics file, or raise one line saying why it is not one."""
    path = Path(path).expanduser()
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            n, mean, scatter = int(data["n"]), data["mean"].astype(np.float64), data["scatter"].astype(np.float64)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:  # JSONDecodeError is a ValueError
        raise DsimError(f"{path} is not a dsim statistics file ({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
                        "make one with `dsim stats DIR --extractor NAME --out FILE.npz`") from None
    if meta.get("format") != FORMAT:
        raise DsimError(f"{path}: unknown statistics format {meta.get('format')!r} (this dsim reads {FORMAT})")
    if mean.ndim != 1 or scatter.shape != (mean.shape[0], mean.shape[0]) or n < 2:
        raise DsimError(f"{path}: inconsistent statistics (n={n}, mean {mean.shape}, scatter {scatter.shape})")
    return StatsFile(path, FeatureStats(n, mean, scatter), meta)


def dataset_stats(path, extractor, **embed_options) -> tuple[FeatureStats, object]:
    """The streamed statistics of a folder through ``extractor`` (embedding what the store lacks)."""
    from dsim.embedding import embed

    embeddings = embed(path, extractor, **embed_options)
    return memoised_stats(embeddings), embeddings


def memoised_stats(embeddings) -> FeatureStats:
    """The :class:`FeatureStats` of ``embeddings`` (an :class:`~dsim.embedding.Embeddings`), read from the
    store's memo when present, else streamed from the store's vectors and memoised."""
    store = embeddings.store
    if store is None or not embeddings.hashes:
        return FeatureStats.of_chunks(embeddings.iter_features())
    key = hashlib.sha256("\n".join(sorted(embeddings.hashes)).encode()).hexdigest()
    path = store.memo_dir / f"fid-stats-{key}{SUFFIX}"
    try:
        with np.load(path, allow_pickle=False) as data:
            n, mean, scatter = int(data["n"]), data["mean"], data["scatter"]
        if n == len(embeddings.hashes) and mean.shape == (store.dim,) and scatter.shape == (store.dim, store.dim):
            return FeatureStats(n, mean, scatter)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # absent, or unreadable: recomputed below
    stats = FeatureStats.of_chunks(embeddings.iter_features())
    buffer = io.BytesIO()
    np.savez(buffer, n=np.int64(stats.n), mean=stats.mean, scatter=stats.scatter)
    try:
        atomic_write_bytes(path, buffer.getvalue(), durable=False)
    except (OSError, DsimError):
        pass  # a read-only or full store (DiskFullError): the statistics are still right, only not memoised
    return stats
