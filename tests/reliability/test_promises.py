"""The Reliability page's table (``docs/reliability.md``) promises nothing untested: every row names tests,
and each name is a test function of ``tests/reliability/``."""

from __future__ import annotations

import ast
import re

from dsim_testing import REPO


def _table_rows() -> list[tuple[str, list[str]]]:
    text = (REPO / "docs" / "reliability.md").read_text()
    section = text.split("## Faults and what dsim does", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("|") and len(cells) == 3 and cells[0] not in ("fault", "---"):
            rows.append((cells[0], re.findall(r"`(test_\w+)`", cells[2])))
    return rows


def _reliability_tests() -> set[str]:
    names = set()
    for path in (REPO / "tests" / "reliability").glob("test_*.py"):
        tree = ast.parse(path.read_text())
        names |= {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
    return names


def test_every_reliability_promise_names_existing_tests():
    rows = _table_rows()
    assert len(rows) >= 20
    known = _reliability_tests()
    for fault, tests in rows:
        assert tests, f"docs/reliability.md row without a test: {fault}"
        missing = [t for t in tests if t not in known]
        assert not missing, f"docs/reliability.md row {fault!r} names tests that do not exist: {missing}"
