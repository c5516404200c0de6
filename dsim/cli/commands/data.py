"""``dsim data``: write the embedded default datasets and sync them with ``data.dvc``."""

from __future__ import annotations

import argparse
from pathlib import Path

from dsim.data import samples as sample_data
from dsim.data.dvc import sync_tracked


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="dsim data", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("--root", default="data", help="where to write the datasets (default: data)")
    parser.add_argument("--force", action="store_true", help="rewrite even when the files are already there")
    parser.add_argument("--no-dvc", action="store_true", help="do not record the data in DVC's cache")
    args = parser.parse_args(argv)
    written = sample_data.materialize(Path(args.root), force=args.force)
    for name, path in written.items():
        print(f"{name:18s} {path}  {sample_data.DEFAULT_DATASETS[name]}")
    if not args.no_dvc:
        print(sync_tracked(Path(args.root)))
