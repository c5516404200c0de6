"""The extractor catalogue, rendered from the extractor classes (the single source of truth).

Each ``conf/extractor/NAME.yaml`` and the README's extractor table are views of the classes: their
preprocessing, layers and dimensions, weights source and licence. ``python -m dsim.extractors.catalog
--write`` rewrites them; ``tests/extractors/test_catalog.py`` fails when a file and its class disagree,
so nothing is declared twice by hand.
"""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

from dsim.extractors.registry import EXTRACTORS, available, build

REPO = Path(__file__).resolve().parents[2]
CONF_DIR = REPO / "conf" / "extractor"
README = REPO / "README.md"
TABLE_BEGIN = "<!-- extractors-table: rendered by `python -m dsim.extractors.catalog --write` -->"
TABLE_END = "<!-- /extractors-table -->"


def _yaml_value(value) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def layers_text(extractor) -> str:
    if type(extractor).dims_note:
        return type(extractor).dims_note
    parts = []
    for layer in type(extractor).layers:
        dim = build(extractor.name, layer=layer).dim if layer != extractor.layer else extractor.dim
        note = type(extractor).layer_notes.get(layer)
        parts.append(f"{layer} → {dim}-d" + (f" ({note})" if note else ""))
    return "; ".join(parts)


def input_text(extractor) -> str:
    size = extractor.preprocess.size
    return extractor.input_note or (f"{size}×{size}" if size else "native")


def weights_text(extractor) -> str:
    location = extractor.default_weights()
    text = location.describe()
    return text + (f"; sha256 {location.sha256}" if location.sha256 else "")


def config_text(name: str) -> str:
    """The full text of ``conf/extractor/NAME.yaml``."""
    cls = EXTRACTORS[name]
    extractor = build(name)
    module = Path(inspect.getfile(cls)).relative_to(REPO).as_posix()
    lines = [
        f"# {name}: {cls.summary}.",
        f"# Rendered from {module} by `python -m dsim.extractors.catalog --write` (a test checks they agree).",
        f"# output:     {layers_text(extractor)}",
        f"# input:      {input_text(extractor)}",
        f"# preprocess: {extractor.preprocess.explain()}",
        f"# weights:    {weights_text(extractor)}",
        f"# licence:    {cls.licence}",
        "_target_: dsim.extractors.build",
        f"name: {name}",
        "weights: default      # default | random (plumbing tests only: never a result) | PATH to local weights",
        f"layer: {cls.default_layer():<14s}# {' | '.join(cls.layers)}",
    ]
    for option, (default, meaning) in cls.options.items():
        lines.append(f"{option}: {_yaml_value(default):<15s}# {meaning}")
    return "\n".join(lines) + "\n"


def table_text() -> str:
    """The README's Markdown table of every extractor."""
    rows = ["| name | output (layer → dim) | input | preprocessing | weights source | licence |",
            "|---|---|---|---|---|---|"]
    for name in available():
        extractor = build(name)
        dims = "; ".join(f"{layer} → {build(name, layer=layer).dim}" for layer in type(extractor).layers)
        dims = type(extractor).dims_note or dims
        rows.append(f"| `{name}` | {dims} | {input_text(extractor)} | {extractor.preprocess.explain()} | "
                    f"{extractor.default_weights().describe()} | {type(extractor).licence} |")
    return "\n".join(rows) + "\n"


def readme_block() -> str:
    return f"{TABLE_BEGIN}\n{table_text()}{TABLE_END}"


def write(conf_dir: Path = CONF_DIR, readme: Path = README) -> list[Path]:
    """Rewrite every extractor config and the README table; return the files that changed."""
    changed = []
    for name in available():
        path = conf_dir / f"{name}.yaml"
        text = config_text(name)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    current = readme.read_text()
    pattern = re.compile(re.escape(TABLE_BEGIN) + r".*?" + re.escape(TABLE_END), re.S)
    if not pattern.search(current):
        raise SystemExit(f"{readme}: no extractor table markers ({TABLE_BEGIN!r} ... {TABLE_END!r})")
    updated = pattern.sub(lambda _: readme_block(), current)
    if updated != current:
        readme.write_text(updated)
        changed.append(readme)
    return changed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dsim.extractors.catalog", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite conf/extractor/*.yaml and the README table")
    args = parser.parse_args(argv)
    if args.write:
        for path in write():
            print(f"wrote {path.relative_to(REPO)}")
    else:
        print(table_text(), end="")


if __name__ == "__main__":
    main()
