"""dsim: a data-versioned benchmark registry for image-dataset similarity.

>>> import dsim                                                       # doctest: +SKIP
>>> ref = dsim.embed("data/photos_a", extractor="efficientnet_lite0")  # doctest: +SKIP
>>> cand = dsim.embed("data/render", extractor="efficientnet_lite0")   # doctest: +SKIP
>>> dsim.metrics.fid(ref.features, cand.features)                     # doctest: +SKIP
{'fid': ...}
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dsim")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from dsim import metrics  # noqa: E402
from dsim.embed import Embeddings, embed  # noqa: E402
from dsim.errors import DsimError  # noqa: E402

__all__ = ["DsimError", "Embeddings", "__version__", "embed", "metrics"]
