"""``dsim --help``: what the command does, its subcommands and the config groups a grid is made of.

Read from the sources, not restated: each subcommand's summary is the first line of its module docstring
(read without importing it, so the help is instant), each group's options are the files of ``conf/``
(and a project's own ``conf/``). Hydra's own help stays reachable as ``dsim --hydra-help``.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from dsim import configs
from dsim.tracking.mlflow_store import resolve_uri, ui_command

#: where the documentation is (the docs/ folder of the repository, built with MkDocs)
DOCS_URL = "the docs/ folder of the repository (`mkdocs serve` in a checkout renders it)"


def command_summary(module: str) -> str:
    """The first docstring line of a subcommand's module, without the leading ``dsim NAME``: part."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return ""
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    _, sep, rest = first.partition(": ")
    summary = rest if sep and first.startswith("``dsim") else first
    return summary.rstrip(".").replace("``", "")


def group_lines(conf_dirs=None) -> list[str]:
    """One line per config group: its options, the default one first and starred."""
    dirs = configs.search_dirs() if conf_dirs is None else conf_dirs
    chosen = configs.default_choices()
    lines = []
    for group in configs.GROUPS:
        options = configs.group_choices(group, dirs)
        default = chosen.get(group)
        ordered = [f"{default}*"] if default in options else []
        ordered += [o for o in options if o != default]
        lines.append(f"  {group:<11}{', '.join(ordered)}")
    return lines


def text(subcommands: dict[str, str], version: str) -> str:
    """The whole of ``dsim --help``."""
    commands = [f"  {name:<9}{command_summary(module)}" for name, module in subcommands.items()]
    return "\n".join(
        [
            f"dsim {version}: a data-versioned benchmark registry for image-dataset similarity",
            "",
            "usage: dsim [GROUP=OPTION | KEY=VALUE ...]      one grid cell (extractor x metric x pair)",
            "       dsim -m GROUP=A,B ... [KEY=VALUE ...]    a grid: every combination (Hydra --multirun)",
            "       dsim COMMAND [ARGS ...]                  a tool; dsim COMMAND --help for its options",
            "",
            "commands:",
            *commands,
            "",
            "config groups (GROUP=OPTION; * = default; a project's conf/ adds its own):",
            *group_lines(),
            "",
            "examples:",
            "  dsim -m experiment=default_grid              the demo grid on the shipped data (dsim data first)",
            "  dsim metric=fid pair.reference=DIR pair.candidate=DIR2",
            "  dsim metric=kid --cfg job                    print the composed config of a cell, run nothing",
            "",
            "options:",
            "  -h, --help      this help            --version    dsim's version",
            "  --cfg job       the composed config  --hydra-help Hydra's own options (launchers, sweeps, output dirs)",
            "",
            f"results: {ui_command(resolve_uri())}",
            f"docs: {DOCS_URL}",
        ]
    )
