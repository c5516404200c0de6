"""Files rendered from declarations (configs, README tables, docstrings): marked sections, writing only
what changed, and the small command line both catalogues share (``python -m dsim.metrics.catalog --write``,
``python -m dsim.extractors.catalog --write``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def replace_block(text: str, begin: str, end: str, block: str, *, where: str = "file") -> str:
    """``text`` with everything from the ``begin`` marker to the ``end`` marker replaced by
    ``begin + "\\n" + block + end``."""
    start = text.find(begin)
    stop = text.find(end, start + len(begin)) if start >= 0 else -1
    if start < 0 or stop < 0:
        raise ValueError(f"{where}: no rendered-section markers ({begin!r} ... {end!r})")
    return text[:start] + begin + "\n" + block + text[stop:]


def write_changed(files: dict[Path, str]) -> list[Path]:
    """Write each ``path: text`` whose file differs; return the paths written."""
    changed = []
    for path, text in files.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed


def catalog_main(
    argv: list[str] | None,
    *,
    prog: str,
    description: str,
    writes: str,
    write: Callable[[], list[Path]],
    table: Callable[[], str],
    repo: Path,
) -> None:
    """``--write``: render the files (``writes`` says which); without it, print the table."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--write", action="store_true", help=f"rewrite {writes}")
    args = parser.parse_args(argv)
    if args.write:
        for path in write():
            print(f"wrote {path.relative_to(repo)}")
    else:
        print(table(), end="")
