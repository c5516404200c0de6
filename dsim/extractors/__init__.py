"""Feature extractors: ``build(name, **options)`` makes one; ``available()`` lists the names."""

from dsim.extractors import efficientnet, pixels  # noqa: F401  (importing registers them)
from dsim.extractors.base import Extractor, Preprocess
from dsim.extractors.registry import EXTRACTORS, available, build

__all__ = ["EXTRACTORS", "Extractor", "Preprocess", "available", "build"]
