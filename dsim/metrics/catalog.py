"""The metric catalogue, rendered from the metric declarations (the single source of truth).

Each ``conf/metric/NAME.yaml``, the metric list in the :mod:`dsim.metrics` docstring and the metric table of
``docs/reference/metrics.md`` are views of :data:`dsim.metrics.METRICS`: name, kind, direction, parameters
with their defaults, meanings and constraints, and value keys with their roles. ``python -m
dsim.metrics.catalog --write`` rewrites them; ``tests/metrics/test_catalog.py`` fails when one disagrees
with the declarations.
"""

from __future__ import annotations

from pathlib import Path

from dsim.metrics._registry import BOOTSTRAP_DOC, FLOOR_DOC, METRICS, Param, available
from dsim.util.codegen import catalog_main, replace_block, write_changed

REPO = Path(__file__).resolve().parents[2]
CONF_DIR = REPO / "conf" / "metric"
README = REPO / "docs" / "reference" / "metrics.md"  # the docs page that holds the metric table
DOCSTRING_FILE = Path(__file__).with_name("__init__.py")
COMMAND = "`python -m dsim.metrics.catalog --write`"
TABLE_BEGIN = f"<!-- metrics-table: rendered by {COMMAND} -->"
TABLE_END = "<!-- /metrics-table -->"
DOC_BEGIN = f".. metrics-list: rendered by {COMMAND}"
DOC_END = ".. /metrics-list"


def yaml_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    return str(value)


def direction(spec) -> str:
    return "higher = closer" if spec.higher_is_better else "lower = closer"


def _source(spec) -> str:
    return spec.module.replace(".", "/") + ".py"


def _param_line(param: Param, indent: str = "  ") -> str:
    meaning = "; ".join(filter(None, [param.doc, param.constraint.text if param.constraint else ""]))
    line = f"{indent}{param.name}: {yaml_value(param.default)}"
    return f"{line:<26s}  # {meaning}" if meaning else line


def config_text(name: str) -> str:
    """The full text of ``conf/metric/NAME.yaml``."""
    spec = METRICS[name]
    lines = [
        f"# {name} ({spec.kind}): {spec.doc} ({direction(spec)}).",
        *(f"# {note}" for note in spec.notes),
        f"# Rendered from {_source(spec)} by {COMMAND} (a test checks they agree).",
        f"name: {name}",
        f"{'bootstrap: 0':<26s}  # {BOOTSTRAP_DOC}",
        f"{'floor: false':<26s}  # {FLOOR_DOC}",
    ]
    params = (*spec.params, *spec.cell_params)
    lines.append("params:" if params else "params: {}")
    lines += [_param_line(p) for p in params]
    return "\n".join(lines) + "\n"


def _values_text(spec) -> str:
    return ", ".join(f"{key} ({role})" for key, role in spec.values.items())


def _params_text(spec) -> str:
    params = (*spec.params, *spec.cell_params)
    return ", ".join(f"{p.name}={yaml_value(p.default)}" for p in params) or "—"


def _cell(text: str) -> str:
    """``text`` inside a Markdown table cell: a ``|`` (as in ``|x-y|``) would end the cell."""
    return text.replace("|", "\\|")


def table_text() -> str:
    """The Markdown table of every metric (``docs/reference/metrics.md``)."""
    rows = [
        "| metric | kind | what | values (role) | `metric.params.*` (defaults) | direction |",
        "|---|---|---|---|---|---|",
    ]
    for name in available():
        spec = METRICS[name]
        what = _cell(spec.doc)
        rows.append(
            f"| `{name}` | {spec.kind} | {what} | {_values_text(spec)} | {_params_text(spec)} | {direction(spec)} |"
        )
    return "\n".join(rows) + "\n"


def docstring_text() -> str:
    """The metric list inside the :mod:`dsim.metrics` docstring."""
    out = []
    for name in available():
        spec = METRICS[name]
        out += [
            f"``{name}`` ({spec.kind}, on {spec.input}, {direction(spec)}): {spec.doc}.",
            f"    values: {_values_text(spec)}",
            f"    params: {_params_text(spec)}",
        ]
        if spec.per_image:
            out.append(
                "    per image: " + "; ".join(f"{side}: {', '.join(cols)}" for side, cols in spec.per_image.items())
            )
    return "\n".join(out) + "\n"


def rendered_files(
    conf_dir: Path = CONF_DIR, readme: Path = README, docstring: Path = DOCSTRING_FILE
) -> dict[Path, str]:
    """Every file the catalogue renders → its content as the declarations say it should be."""
    files = {conf_dir / f"{name}.yaml": config_text(name) for name in available()}
    files[readme] = replace_block(readme.read_text(), TABLE_BEGIN, TABLE_END, table_text(), where=str(readme))
    files[docstring] = replace_block(docstring.read_text(), DOC_BEGIN, DOC_END, docstring_text(), where=str(docstring))
    return files


def write(**where) -> list[Path]:
    """Rewrite every rendered file that differs; return those that changed."""
    return write_changed(rendered_files(**where))


def main(argv: list[str] | None = None) -> None:
    catalog_main(
        argv,
        prog="python -m dsim.metrics.catalog",
        description=__doc__.splitlines()[0],
        writes="conf/metric/*.yaml, the table of docs/reference/metrics.md and the dsim.metrics docstring",
        write=write,
        table=table_text,
        repo=REPO,
    )


if __name__ == "__main__":
    main()
