"""The flat layout's module paths (``dsim.store``, ``dsim.images``, ...) keep working for one release:
the same module objects as at their new paths, each with a DeprecationWarning that names the new path."""

import importlib
import subprocess
import sys

import pytest

from dsim import _compat


@pytest.mark.slow
@pytest.mark.parametrize("old", sorted(_compat.MOVED))
def test_an_old_module_path_is_the_new_module_with_a_warning(old):
    code = (f"import importlib, warnings\n"
            f"with warnings.catch_warnings(record=True) as caught:\n"
            f"    warnings.simplefilter('always')\n"
            f"    old = importlib.import_module({old!r})\n"
            f"new = importlib.import_module({_compat.MOVED[old]!r})\n"
            f"assert old is new, (old, new)\n"
            f"messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]\n"
            f"assert any('moved to {_compat.MOVED[old]}' in m for m in messages), messages\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)  # a fresh interpreter
    assert done.returncode == 0, done.stderr


def test_submodules_of_a_moved_package_and_from_imports_resolve():
    with pytest.warns(DeprecationWarning, match="dsim.cli.commands.data"):
        module = importlib.import_module("dsim.commands.data")
    assert module is importlib.import_module("dsim.cli.commands.data")
    with pytest.warns(DeprecationWarning):
        from dsim.store import VectorStore
    from dsim.embeddings.store import VectorStore as moved
    assert VectorStore is moved


def test_old_modules_that_became_packages_forward_their_names():
    from dsim.tracking.mlflow_store import Tracker

    with pytest.warns(DeprecationWarning, match="dsim.tracking.mlflow_store.Tracker"):
        import dsim.tracking

        assert dsim.tracking.Tracker is Tracker
    import dsim.cli
    from dsim.cli.app import main

    assert dsim.cli.main is main  # the console script's entry point: no warning
    with pytest.raises(AttributeError):
        dsim.tracking.no_such_name  # noqa: B018


def test_every_old_path_is_gone_from_the_tree():
    """The shim is for users: dsim and its tests import the new paths only."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    used = []
    for path in [*root.joinpath("dsim").rglob("*.py"), *root.joinpath("tests").rglob("*.py"),
                 *root.joinpath("benchmarks").rglob("*.py")]:
        if path.name in ("_compat.py", "test_compat.py"):
            continue
        text = path.read_text(encoding="utf-8")
        used += [f"{path.relative_to(root)}: {old}" for old in _compat.MOVED
                 if f"import {old}\n" in text or f"from {old} import" in text or f"import {old} as" in text]
    assert not used, used
