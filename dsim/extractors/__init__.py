"""Feature extractors: ``build(name, **options)`` makes one; ``available()`` lists the names.

Every extractor takes ``weights`` (``"default"``, ``"random"`` or a local path) and ``layer`` (its
``layers``' keys; classifiers also have ``"logits"``). See the table of docs/reference/extractors.md.
"""

from dsim.extractors import clip, dinov2, dreamsim, efficientnet, families, huggingface, inception, mobilenet, pixels  # noqa: F401
from dsim.extractors.base import Extractor, Preprocess
from dsim.extractors.registry import EXTRACTORS, available, build, from_config, with_layer

__all__ = ["EXTRACTORS", "Extractor", "Preprocess", "available", "build", "from_config", "with_layer"]
