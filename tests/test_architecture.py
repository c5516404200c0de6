"""The layers of docs/architecture.md, checked on the source (AST): who may import whom.

The allow-list is :data:`dsim.util.layers.LAYERS`. Every import counts — module level and inside functions,
``importlib.import_module`` / ``__import__`` with a constant name, the dotted names in lazy-attribute tables —
except for the cycle rule, which is about what runs at import time (module-level imports, package
``__init__``s included). The checks are functions of a source tree, so a self-test plants each kind of
violation in a copy and sees it caught.
"""

import ast
import shutil
import sys
from pathlib import Path

import pytest

from dsim.util import layers

PACKAGE = Path(__file__).resolve().parents[1] / "dsim"
IMPORTERS = {"import_module", "__import__"}


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources(package: Path) -> dict[str, Path]:
    return {_module_name(p, package): p for p in sorted(package.rglob("*.py")) if "conf" not in p.relative_to(package).parts}


def _imports(path: Path, *, top_level_only: bool = False, package: Path = PACKAGE, strings: bool = False) -> set[str]:
    """Absolute names of what ``path`` imports (``from a import b`` gives ``a`` and ``a.b``); with ``strings``,
    also the constant names given to ``import_module``/``__import__`` and the ``dsim.…`` values of dict
    literals (lazy-attribute tables)."""
    name = _module_name(path, package)
    base_package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = base_package.split(".")[: len(base_package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif strings and isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in IMPORTERS and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
        elif strings and isinstance(node, ast.Dict):
            for value in node.values:
                for item in (value.elts if isinstance(value, ast.Tuple) else [value]):
                    if isinstance(item, ast.Constant) and isinstance(item.value, str) and item.value.startswith("dsim."):
                        found.add(item.value)
    return found


def layer_violations(package: Path) -> list[str]:
    """``importer imports imported`` for every dsim import the allow-list does not permit."""
    modules = _sources(package)
    bad = []
    for name, path in modules.items():
        unit = layers.unit_of(name)
        if name not in layers.FACADE and layers.level_of(unit) is None:
            bad.append(f"{name} is in no layer of dsim.util.layers.LAYERS")
        for imported in sorted(_imports(path, package=package, strings=True)):
            if imported.split(".")[0] == "dsim" and imported != "dsim" and not layers.may_import(name, imported):
                bad.append(f"{name} imports {imported}")
    return bad


MODULES = _sources(PACKAGE)
IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _violations(modules, forbidden) -> list[str]:
    return [f"{m} imports {i}" for m in modules for i in sorted(IMPORTS[m]) if _within(i, forbidden)]


def _in(prefix: str) -> list[str]:
    return [m for m in MODULES if _within(m, [prefix])]


def test_every_package_imports_only_the_layers_below_it():
    assert layer_violations(PACKAGE) == []


def test_the_layer_table_in_the_docs_is_rendered_from_the_allow_list():
    assert layers.render(layers.DOC.read_text()) == layers.DOC.read_text(), \
        "docs/architecture.md is stale: run python -m dsim.util.layers --write"


#: (file under dsim/, code appended to it, the violation the checks must report) — the 7 kinds a review
#: planted by hand, plus a lazy-attribute table
PLANTED = [
    ("metrics/fid.py", "from dsim.extractors import build\n", "dsim.metrics.fid imports dsim.extractors"),
    ("data/derived.py", "def _late():\n    from dsim.cell import key\n", "dsim.data.derived imports dsim.cell"),
    ("util/fileio.py", "def _late():\n    from dsim.cli import sweep\n", "dsim.util.fileio imports dsim.cli"),
    ("extractors/base.py", "def _late():\n    import dsim.metrics\n", "dsim.extractors.base imports dsim.metrics"),
    ("extractors/base.py", "def _late():\n    from dsim.embeddings.store import VectorStore\n",
     "dsim.extractors.base imports dsim.embeddings.store"),
    ("tracking/session.py", "def _late():\n    from dsim.cell.key import cell_key\n",
     "dsim.tracking.session imports dsim.cell.key"),
    ("metrics/fid.py", "def _late():\n    import importlib\n    importlib.import_module('dsim.extractors')\n",
     "dsim.metrics.fid imports dsim.extractors"),
    ("metrics/fid.py", "_LAZY = {'build': ('dsim.extractors', 'build')}\n", "dsim.metrics.fid imports dsim.extractors"),
    ("generators/toy.py", "def _late():\n    __import__('dsim.tracking.queue')\n",
     "dsim.generators.toy imports dsim.tracking.queue"),
]


@pytest.mark.parametrize("target, code, reported", PLANTED, ids=[f"{t}:{r.split()[-1]}" for t, _, r in PLANTED])
def test_each_planted_violation_is_caught(tmp_path, target, code, reported):
    copy = tmp_path / "dsim"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "conf"))
    assert layer_violations(copy) == []  # the copy is clean before the plant
    with (copy / target).open("a", encoding="utf-8") as file:
        file.write("\n\n" + code)
    assert reported in layer_violations(copy)


def test_a_planted_import_time_cycle_is_caught(tmp_path):
    copy = tmp_path / "dsim"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "conf"))
    assert _cycles(_import_time_graph(copy)) == []
    for module, other in (("data/hash_memo.py", "dsim.data.derived"), ("data/derived.py", "dsim.data.hash_memo")):
        text = (copy / module).read_text()
        (copy / module).write_text(text.replace("from __future__ import annotations\n",
                                                f"from __future__ import annotations\n\nimport {other}\n", 1))
    assert ["dsim.data.derived", "dsim.data.hash_memo"] in _cycles(_import_time_graph(copy))


def test_the_rules_see_every_module():
    assert len(MODULES) > 50 and "dsim.metrics.paired._lpips" in MODULES and "dsim.cli.app" in MODULES


#: what a metric module may import: the standard library, the numeric stack and dsim's low-level helpers
METRIC_THIRD_PARTY = {"numpy", "torch", "scipy", "threadpoolctl", "torchmetrics", "torchvision", "lpips",
                      "ot", "geomloss"}  # the optimal-transport solvers (POT, geomloss)
LOW_LEVEL = {"dsim.errors", "dsim.util.fileio", "dsim.weights", "dsim.util.plugins", "dsim.util.codegen", "dsim.metrics"}


def test_metrics_import_only_the_numeric_stack_and_low_level_helpers():
    bad = []
    for module in _in("dsim.metrics"):
        for name in sorted(IMPORTS[module]):
            root = name.split(".")[0]
            if root == "dsim":
                if not _within(name, LOW_LEVEL) and name != "dsim":
                    bad.append(f"{module} imports {name}")
            elif root not in sys.stdlib_module_names and root not in METRIC_THIRD_PARTY and root != "__future__":
                bad.append(f"{module} imports {name}")
    assert not bad, bad


def test_only_tracking_imports_mlflow():
    assert not _violations([m for m in MODULES if m != "dsim.tracking.mlflow_store"], ["mlflow"])


#: the CLI and sweep layer: the only modules that see Hydra's and omegaconf's objects
HYDRA_LAYER = {"dsim.cli.app", "dsim.cli.sweep"}


def test_only_the_cli_and_sweep_layer_touch_hydra_and_omegaconf():
    assert not _violations([m for m in MODULES if m not in HYDRA_LAYER], ["hydra", "omegaconf"])


def _import_time_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module → the dsim modules importing it runs at import time (its imports and their parent packages)."""
    modules = _sources(package)
    graph = {}
    for name, path in modules.items():
        ancestors = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
        deps = set()
        for imported in _imports(path, top_level_only=True, package=package):
            parts = imported.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            for k in range(1, len(parts) + 1):
                target = ".".join(parts[:k])
                if target != name and target not in ancestors:
                    deps.add(target)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_counting_package_inits():
    assert _cycles(_import_time_graph()) == []


def test_the_cycle_check_can_fail():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", ["dsim", "dsim.metrics", "dsim.extractors", "dsim.cell", "dsim.analysis"])
def test_no_public_module_is_shadowed_by_a_function(package):
    import importlib
    import pkgutil

    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        if info.name.startswith("_") or not hasattr(module, info.name):
            continue
        value = getattr(module, info.name)
        assert getattr(value, "__name__", None) == f"{package}.{info.name}", (
            f"{package}.{info.name} is a module but {package} binds that name to {value!r}")
