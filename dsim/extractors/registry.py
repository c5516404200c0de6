"""The extractor registry: name → class. A new extractor is one module with ``@register`` on its class
(imported in ``dsim/extractors/__init__.py``) and one config file in ``conf/extractor/`` (rendered from
the class by ``python -m dsim.extractors.catalog --write``)."""

from __future__ import annotations

from dsim.errors import DsimError

EXTRACTORS: dict[str, type] = {}


def register(cls):
    """Class decorator: make ``cls`` buildable by its ``name``."""
    if not cls.name or cls.name in EXTRACTORS:
        raise ValueError(f"extractor name {cls.name!r} is empty or taken")
    if not cls.layers:
        raise ValueError(f"extractor {cls.name!r} declares no layers")
    EXTRACTORS[cls.name] = cls
    return cls


def available() -> list[str]:
    return sorted(EXTRACTORS)


def with_layer(layer: str) -> list[str]:
    """Names of the extractors that can emit ``layer`` (e.g. ``"logits"`` for the Inception Score)."""
    return [name for name in available() if layer in EXTRACTORS[name].layers]


def build(name: str, **options):
    """Instantiate the extractor called ``name`` with ``options`` (e.g. ``weights="random"``, ``layer="logits"``)."""
    try:
        cls = EXTRACTORS[name]
    except KeyError:
        raise DsimError(f"unknown extractor {name!r} (choose from: {', '.join(available())})") from None
    try:
        return cls(**options)
    except TypeError as error:  # an option the extractor does not take: one line, not a traceback
        raise DsimError(f"extractor {name!r}: {error}") from None
