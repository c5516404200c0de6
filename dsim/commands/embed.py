"""``dsim embed``: embed one dataset with one extractor and save the features as an ``.npz`` file.

This is the DVC pipeline's embedding stage (``dvc.yaml``: one stage per extractor × dataset): it fills
the content-addressed cache the grid reads, and writes a portable, DVC-cached copy of the features.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dsim.cache import atomic_write_bytes
from dsim.embed import DEFAULT_CACHE_DIR, Embeddings, embed


def save_npz(embeddings: Embeddings, path: Path) -> None:
    """Features, ids, hashes and identity of ``embeddings`` in one ``.npz`` (written atomically)."""
    import io

    buffer = io.BytesIO()
    np.savez(buffer, features=embeddings.features, ids=np.array(embeddings.ids), hashes=np.array(embeddings.hashes),
             fingerprint=embeddings.fingerprint, extractor=embeddings.extractor,
             extractor_identity=embeddings.extractor_identity, weights_checksum=embeddings.weights_checksum,
             random_weights=embeddings.random_weights)
    atomic_write_bytes(path, buffer.getvalue())


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="dsim embed", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("dataset", help="an image folder")
    parser.add_argument("--extractor", default="efficientnet_lite0")
    parser.add_argument("--weights", default=None, help="default | random | PATH")
    parser.add_argument("--out", required=True, help="the .npz file to write")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR)
    parser.add_argument("--on-error", default="raise", choices=["raise", "skip"])
    args = parser.parse_args(argv)
    embeddings = embed(args.dataset, extractor=args.extractor, weights=args.weights, device=args.device,
                       batch_size=args.batch_size, cache_dir=args.cache_dir, on_error=args.on_error)
    save_npz(embeddings, Path(args.out))
    print(f"{args.out}: {embeddings.features.shape[0]} x {embeddings.features.shape[1]} "
          f"({embeddings.n_computed} embedded now, {len(embeddings) - embeddings.n_computed} from the cache)")
