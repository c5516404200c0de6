"""The extractor catalogue, rendered from the extractor classes (the single source of truth).

Each ``conf/extractor/NAME.yaml`` and the extractor table of ``docs/reference/extractors.md`` are views of
the classes: their preprocessing, layers and dimensions, weights source and licence. ``python -m
dsim.extractors.catalog --write`` rewrites them; ``tests/extractors/test_zoo_catalog.py`` fails when a file
and its class disagree, so nothing is declared twice by hand.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from dsim.extractors.registry import EXTRACTORS, available, build
from dsim.util.codegen import catalog_main, replace_block, write_changed

REPO = Path(__file__).resolve().parents[2]
CONF_DIR = REPO / "conf" / "extractor"
README = REPO / "docs" / "reference" / "extractors.md"  # the docs page that holds the extractor table
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
    if extractor.input_note:
        return extractor.input_note
    size = extractor.preprocess.size
    return f"{size}×{size}" if size else "native"


def preprocess_text(extractor) -> str:
    return extractor.preprocess_note or extractor.preprocess.explain()


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
        f"# preprocess: {preprocess_text(extractor)}",
        f"# weights:    {weights_text(extractor)}",
        f"# licence:    {cls.licence}",
        "_target_: dsim.extractors.build",
        f"name: {name}",
        "weights: default      # default | random (plumbing tests only: never a result) | PATH to local weights",
        f"layer: {cls.default_layer():<14s}# {' | '.join(cls.layers)}",
    ]
    for option, (default, meaning) in cls.options.items():
        value = _yaml_value(default)
        lines.append(f"{option}: {value:<15s}# {meaning}" if len(value) < 15 else f"{option}: {value}  # {meaning}")
    return "\n".join(lines) + "\n"


def table_text() -> str:
    """The Markdown table of every extractor (``docs/reference/extractors.md``)."""
    rows = [
        "| name | output (layer → dim) | input | preprocessing | weights source | licence |",
        "|---|---|---|---|---|---|",
    ]
    for name in available():
        extractor = build(name)
        dims = type(extractor).dims_note or "; ".join(
            f"{layer} → {build(name, layer=layer).dim}" for layer in type(extractor).layers
        )
        rows.append(
            f"| `{name}` | {dims} | {input_text(extractor)} | {preprocess_text(extractor)} | "
            f"{extractor.default_weights().describe()} | {type(extractor).licence} |"
        )
    return "\n".join(rows) + "\n"


def write(conf_dir: Path = CONF_DIR, readme: Path = README) -> list[Path]:
    """Rewrite every extractor config and the docs table; return the files that changed."""
    files = {conf_dir / f"{name}.yaml": config_text(name) for name in available()}
    files[readme] = replace_block(readme.read_text(), TABLE_BEGIN, TABLE_END, table_text(), where=str(readme))
    return write_changed(files)


def main(argv: list[str] | None = None) -> None:
    catalog_main(
        argv,
        prog="python -m dsim.extractors.catalog",
        description=__doc__.splitlines()[0],
        writes="conf/extractor/*.yaml and the table of docs/reference/extractors.md",
        write=write,
        table=table_text,
        repo=REPO,
    )


if __name__ == "__main__":
    main()
