"""The layers of docs/architecture.md, checked on the source (AST): who may import whom.

Every import counts — module level and inside functions — except for the cycle rule, which is about what
runs at import time (module-level imports, package ``__init__``s included).
"""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dsim"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """Absolute names of what ``path`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _violations(modules, forbidden) -> list[str]:
    return [f"{m} imports {i}" for m in modules for i in sorted(IMPORTS[m]) if _within(i, forbidden)]


def _in(prefix: str) -> list[str]:
    return [m for m in MODULES if _within(m, [prefix])]


def test_the_rules_see_every_module():
    assert len(MODULES) > 50 and "dsim.metrics.paired.lpips" in MODULES and "dsim.cli.app" in MODULES


#: what a metric module may import: the standard library, the numeric stack and dsim's low-level helpers
METRIC_THIRD_PARTY = {"numpy", "torch", "scipy", "threadpoolctl", "torchmetrics", "torchvision", "lpips"}
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


def test_low_level_helpers_stay_low():
    helpers = [m for m in MODULES if _within(m, LOW_LEVEL - {"dsim.metrics"})]
    assert not _violations(helpers, ["dsim.metrics", "dsim.extractors", "dsim.data.images", "dsim.embeddings.embed",
                                     "dsim.cell", "dsim.tracking.mlflow_store", "dsim.analysis", "mlflow", "hydra", "omegaconf"])


def test_extractors_never_import_tracking_or_the_cell():
    assert not _violations(_in("dsim.extractors"), ["dsim.tracking.mlflow_store", "dsim.cell", "dsim.tracking.session", "dsim.tracking.queue",
                                                    "dsim.cli.sweep", "dsim.cli.app", "dsim.analysis", "mlflow"])


def test_only_tracking_imports_mlflow():
    assert not _violations([m for m in MODULES if m != "dsim.tracking.mlflow_store"], ["mlflow"])


#: the CLI and sweep layer: the only modules that see Hydra's and omegaconf's objects
HYDRA_LAYER = {"dsim.cli.app", "dsim.cli.sweep"}


def test_only_the_cli_and_sweep_layer_touch_hydra_and_omegaconf():
    assert not _violations([m for m in MODULES if m not in HYDRA_LAYER], ["hydra", "omegaconf"])


def _import_time_graph() -> dict[str, set[str]]:
    """Module → the dsim modules importing it runs at import time (its imports and their parent packages)."""
    graph = {}
    for name, path in MODULES.items():
        ancestors = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
        deps = set()
        for imported in _imports(path, top_level_only=True):
            parts = imported.split(".")
            while parts and ".".join(parts) not in MODULES:
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
