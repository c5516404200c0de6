"""Reference statistics files (``dsim stats DIR --extractor NAME --out ref.npz``): a dataset kept as N, mean
and covariance, with provenance, usable wherever a reference dataset is (``pair.reference=ref.npz``).

The file holds float64 ``n``, ``mean``, ``covariance`` and the centred ``scatter`` (covariance × (N − 1),
kept so the streamed statistics come back bit for bit: FID from the file equals FID from the folder), plus
``meta`` (JSON): the extractor's name, identity and weights checksum, the dataset's content fingerprint,
image count and folder, the dsim version and the time. It is read with ``allow_pickle=False`` (no code).
Only metrics with a streamed form (``MetricSpec.from_stats``: FID) take one; a file from another extractor
identity than the cell's is a one-line error.
"""

from __future__ import annotations

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
    return FeatureStats.of_chunks(embeddings.iter_features()), embeddings
