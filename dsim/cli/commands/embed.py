"""``dsim embed``: embed one dataset with one extractor and save the features as an ``.npz`` file.

This is the DVC pipeline's embedding stage (``dvc.yaml``: one stage per extractor × dataset): it fills
the content-addressed cache the grid reads, and writes a portable, DVC-cached copy of the features
(``dsim cache import`` loads such copies into another cache).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dsim.embeddings.embed import DEFAULT_CACHE_DIR, embed
from dsim.embeddings.npz import save_npz


def dataset_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The arguments of a command that embeds one dataset into an ``.npz`` file (``dsim embed``, ``dsim stats``)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("dataset", help="an image folder")
    parser.add_argument("--extractor", default="efficientnet_lite0", help="an extractor name (see `dsim weights`)")
    parser.add_argument("--weights", default=None, help="default | random | PATH")
    parser.add_argument("--out", required=True, help="the .npz file to write")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR)
    parser.add_argument("--on-error", default="raise", choices=["raise", "skip"])
    return parser


def run(argv: list[str]) -> None:
    args = dataset_parser("dsim embed", __doc__.splitlines()[0].split(": ", 1)[1]).parse_args(argv)
    embeddings = embed(
        args.dataset,
        extractor=args.extractor,
        weights=args.weights,
        device=args.device,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
        on_error=args.on_error,
    )
    save_npz(embeddings, Path(args.out))
    print(
        f"{args.out}: {embeddings.features.shape[0]} x {embeddings.features.shape[1]} "
        f"({embeddings.n_computed} embedded now, {len(embeddings) - embeddings.n_computed} from the cache)"
    )
