"""dsim: a data-versioned benchmark registry for image-dataset similarity.

>>> import dsim                                                       # doctest: +SKIP
>>> ref = dsim.embed("data/photos_a", extractor="efficientnet_lite0")  # doctest: +SKIP
>>> cand = dsim.embed("data/render", extractor="efficientnet_lite0")   # doctest: +SKIP
>>> dsim.metrics.fid(ref.features, cand.features)                     # doctest: +SKIP
{'fid': ...}

``import dsim`` is cheap: the public names below load their modules (and torch) on first use.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dsim")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from dsim import _compat  # noqa: E402  (the old flat module paths, deprecated)
from dsim.errors import DsimError  # noqa: E402  (no heavy imports)

_compat.install()

#: public name → (module, attribute or None for the module itself), imported on first access
_LAZY = {
    "compare": ("dsim.pipeline.comparison", "compare"),
    "embed": ("dsim.embeddings.embed", "embed"),
    "Embeddings": ("dsim.embeddings.embed", "Embeddings"),
    "metrics": ("dsim.metrics", None),
}

__all__ = ["DsimError", "Embeddings", "__version__", "compare", "embed", "metrics"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'dsim' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = import_module(module) if attribute is None else getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
