"""The layer contract of dsim's packages, bottom to top: the one allow-list that ``tests/test_architecture.py``
checks on the source and that ``docs/architecture.md``'s layer table is rendered from
(``python -m dsim.util.layers --write``).

A package (a *unit*: ``dsim.metrics``, ``dsim.data``, ...; a top-level module counts as its own unit) may
import the units of the layers below its own and nothing else of dsim; units of one layer (siblings, such
as extractors, metrics and data) import none of each other. ``dsim/__init__.py`` and ``dsim/_compat.py`` are
the facade over all of them and are not in any layer.
"""

from __future__ import annotations

from pathlib import Path

#: (layer name, its units, what the layer is for), from the bottom up
LAYERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("errors", ("errors",), "DsimError, the one-line errors a user can cause"),
    ("helpers", ("util", "configs"), "atomic files and locks, plugins, rendered files; where configs live"),
    ("weights", ("weights",), "weights sources, reading checkpoints as tensors, checksums"),
    (
        "primitives",
        ("metrics", "extractors", "data", "records"),
        "metric functions; feature extractors; image files and derived folders; job files",
    ),
    (
        "features and services",
        ("embeddings", "generators", "tracking", "results"),
        "embedding and its store; generator samples; MLflow and the pending queue; results tables",
    ),
    ("cell", ("cell",), "one grid cell: a runner per metric kind, pairing, key, record"),
    ("analysis", ("analysis",), "what is drawn from cells and sweeps: entropy bias, correlations, report, views"),
    ("pipeline", ("pipeline",), "run_cell and dsim.compare: the one way through a cell"),
    ("studies", ("studies",), "published experiments reproduced on dsim: a downstream model and its protocol"),
    ("CLI", ("cli",), "the dsim command, the sweep callback, task=embed and task=transfer_study, subcommands"),
)
#: modules outside every layer: the package's public facade and the deprecated old paths
FACADE = ("dsim", "dsim._compat")
#: what any module may import of the facade: the version, and the shims (they import nothing until used)
FACADE_NAMES = ("dsim", "dsim.__version__", "dsim._compat")

BEGIN = "<!-- layers: rendered by python -m dsim.util.layers --write -->"
END = "<!-- /layers -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def unit_of(module: str) -> str:
    """``dsim.cell.paired`` → ``cell``; ``dsim.records`` → ``records``; ``dsim`` → ``dsim``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def level_of(unit: str) -> int | None:
    for level, (_, units, _) in enumerate(LAYERS):
        if unit in units:
            return level
    return None


def may_import(importer: str, imported: str) -> bool:
    """Whether module ``importer`` may import module ``imported`` (both dotted ``dsim.…`` names)."""
    if importer in FACADE or imported in FACADE_NAMES or unit_of(importer) == unit_of(imported):
        return True
    mine, theirs = level_of(unit_of(importer)), level_of(unit_of(imported))
    return mine is not None and theirs is not None and theirs < mine


def table() -> str:
    """The layer table of ``docs/architecture.md`` (markdown)."""
    rows = ["| layer | packages (siblings: none imports another) | may import of dsim |", "|---|---|---|"]
    for level, (name, units, purpose) in enumerate(LAYERS):
        rows.append(
            f"| {name}: {purpose} | {', '.join(f'`{u}`' for u in units)} | "
            f"{'the rows above' if level else 'nothing of dsim'} |"
        )
    return "\n".join(rows) + "\n"


def render(text: str) -> str:
    from dsim.util.codegen import replace_block

    return replace_block(text, BEGIN, END, table(), where=str(DOC))


def main(argv: list[str] | None = None) -> None:
    from dsim.util.codegen import catalog_main, write_changed

    catalog_main(
        argv,
        prog="python -m dsim.util.layers",
        description=__doc__.splitlines()[0],
        writes="docs/architecture.md's layer table",
        table=table,
        repo=DOC.parents[1],
        write=lambda: write_changed({DOC: render(DOC.read_text())}),
    )


if __name__ == "__main__":
    main()
