"""The extractor registry: name → class. A new extractor is one module with ``@register`` on its class
(imported in ``dsim/extractors/__init__.py``) and one config file in ``conf/extractor/``."""

from __future__ import annotations

from dsim.errors import DsimError

EXTRACTORS: dict[str, type] = {}


def register(cls):
    """Class decorator: make ``cls`` buildable by its ``name``."""
    if not cls.name or cls.name in EXTRACTORS:
        raise ValueError(f"extractor name {cls.name!r} is empty or taken")
    EXTRACTORS[cls.name] = cls
    return cls


def available() -> list[str]:
    return sorted(EXTRACTORS)


def build(name: str, **options):
    """Instantiate the extractor called ``name`` with ``options`` (e.g. ``weights="random"``)."""
    try:
        cls = EXTRACTORS[name]
    except KeyError:
        raise DsimError(f"unknown extractor {name!r} (choose from: {', '.join(available())})") from None
    return cls(**options)
