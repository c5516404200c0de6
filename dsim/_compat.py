"""Deprecation shims for the module paths of dsim ≤ 0.x's flat layout (removed in the next release).

``import dsim.store`` (and every other moved module) still works: a meta-path finder hands out the module
at its new path — the same module object, so ``monkeypatch`` and ``isinstance`` behave — with a
:class:`DeprecationWarning` naming the new path. Two old modules became packages of the same name
(``dsim.cli``, ``dsim.tracking``): their package ``__getattr__`` forwards the old attributes through
:func:`forward`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old module path → new module path
MOVED = {
    "dsim.fileio": "dsim.util.fileio",
    "dsim.plugins": "dsim.util.plugins",
    "dsim.rendered": "dsim.util.codegen",
    "dsim.images": "dsim.data.images",
    "dsim.hashstate": "dsim.data.hash_memo",
    "dsim.derived": "dsim.data.derived",
    "dsim.perturb": "dsim.data.perturb",
    "dsim.lineage": "dsim.data.lineage",
    "dsim.dvc": "dsim.data.dvc",
    "dsim.sample_data": "dsim.data.samples",
    "dsim.render": "dsim.data.renders",
    "dsim.pairing": "dsim.cell.pairing",
    "dsim.embedding": "dsim.embeddings.embed",
    "dsim.store": "dsim.embeddings.store",
    "dsim.embedding_files": "dsim.embeddings.npz",
    "dsim.stats_file": "dsim.embeddings.stats_files",
    "dsim.entropy": "dsim.embeddings.entropy",
    "dsim.runlog": "dsim.tracking.queue",
    "dsim.session": "dsim.tracking.session",
    "dsim.comparison": "dsim.pipeline.comparison",
    "dsim.cell.run": "dsim.pipeline.run",
    "dsim.sweep": "dsim.cli.sweep",
    "dsim.embed_task": "dsim.cli.embed_task",
    "dsim.record": "dsim.records",
    "dsim.commands": "dsim.cli.commands",
    # metric modules, named after their metric (the public names stay in dsim.metrics)
    "dsim.metrics.frechet": "dsim.metrics._fid",
    "dsim.metrics.kid": "dsim.metrics._kid",
    "dsim.metrics.clip_mmd": "dsim.metrics._cmmd",
    "dsim.metrics.manifold": "dsim.metrics._prdc",
    "dsim.metrics.inception_score": "dsim.metrics._isc",
    "dsim.metrics.pca_distance": "dsim.metrics._odist",
    "dsim.metrics.fd_infinity": "dsim.metrics._fd_inf",
    "dsim.metrics.diversity": "dsim.metrics._vendi",
    "dsim.metrics.authenticity": "dsim.metrics._authpct",
    "dsim.metrics.path_length": "dsim.metrics._ppl",
    "dsim.metrics.paired.lpips": "dsim.metrics.paired._lpips",
    "dsim.metrics.paired.dreamsim": "dsim.metrics.paired._dreamsim",
}


def new_name(old: str) -> str | None:
    """The new path of module ``old`` (``dsim.commands.data`` → ``dsim.cli.commands.data``), or None."""
    for prefix, target in MOVED.items():
        if old == prefix or old.startswith(prefix + "."):
            return target + old[len(prefix) :]
    return None


def _warn(old: str, new: str) -> None:
    warnings.warn(
        f"{old} moved to {new}; import it from there ({old} goes in the next release)", DeprecationWarning, stacklevel=3
    )


class _Alias(importlib.abc.Loader):
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def create_module(self, spec):
        _warn(self.old, self.new)
        return importlib.import_module(self.new)

    def exec_module(self, module) -> None:
        sys.modules[self.old] = module  # already executed under its new name


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds each old module path of :data:`MOVED` and loads the module at its new path."""

    def find_spec(self, fullname, path=None, target=None):
        new = new_name(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(fullname, new))


def install() -> None:
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())


def forward(package: str, module: str, name: str, *, deprecated: bool = True):
    """Attribute ``name`` of the old module ``package`` (now a package), from ``module``."""
    if name.startswith("__"):
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name, _MISSING)
    if value is _MISSING:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    if deprecated:
        _warn(f"{package}.{name}", f"{module}.{name}")
    return value


_MISSING = object()
