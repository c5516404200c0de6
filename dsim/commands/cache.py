"""``dsim cache import PATH...``: load embedding files (``dsim embed --out``) into the embedding cache.

Folders are searched recursively for ``.npz`` files. Each vector goes under the extractor identity it
was computed with, so only cells with exactly that extractor, weights, layer and preprocessing use it.
"""

from __future__ import annotations

import argparse

from dsim.embed import DEFAULT_CACHE_DIR
from dsim.embedding_files import find_npz, import_npz
from dsim.errors import DsimError


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="dsim cache", description=__doc__.split(": ", 1)[1].split("\n\n")[0])
    parser.add_argument("action", choices=("import",))
    parser.add_argument("paths", nargs="+", help=".npz files or folders of them (e.g. embeddings/)")
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR)
    args = parser.parse_args(argv)
    files = find_npz(args.paths)
    if not files:
        raise DsimError(f"no .npz embedding files under {', '.join(args.paths)}")
    added = present = 0
    for path in files:
        done = import_npz(path, args.cache_dir)
        added, present = added + done.added, present + done.present
        print(f"{path}: {done.extractor} [{done.identity[:16]}] {done.added} added, {done.present} already cached")
    print(f"{len(files)} file(s): {added} vector(s) added to {args.cache_dir}, {present} already there")
