"""The extractor registry: name → class. A new extractor is one module with ``@register`` on its class
(imported in ``dsim/extractors/__init__.py``) and one config file in ``conf/extractor/`` (rendered from
the class by ``python -m dsim.extractors.catalog --write``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dsim.extractors.base import Extractor

from dsim.errors import DsimError

EXTRACTORS: dict[str, type[Extractor]] = {}


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
    """Instantiate the extractor called ``name`` with ``options`` (e.g. ``weights="random"``, ``layer="logits"``).

    ``<family>/<model>`` names a library's backbone (``timm/convnextv2_atto``, ``open_clip/ViT-B-32/openai``:
    :mod:`dsim.extractors.families`). A name dsim does not know is looked up among installed packages'
    ``dsim.extractors`` entry points.
    """
    family, _, model = str(name).partition("/")
    if model and family in EXTRACTORS and "model" in getattr(EXTRACTORS[family], "options", {}):
        return instantiate(EXTRACTORS[family], name, {**options, "model": model})
    cls = EXTRACTORS.get(name)
    if cls is None:
        from dsim.util.plugins import entry_point

        cls = entry_point("dsim.extractors", name)
        if cls is None:
            raise DsimError(f"unknown extractor {name!r} (choose from: {', '.join(available())})")
    return instantiate(cls, name, options)


def instantiate(cls, name: str, options: dict):
    """``cls(**options)``, checked to be an extractor; bad options are one line, not a traceback."""
    from dsim.extractors.base import Extractor

    if not (isinstance(cls, type) and issubclass(cls, Extractor)):
        raise DsimError(f"extractor {name!r}: {cls!r} is not a subclass of dsim.extractors.Extractor")
    try:
        return cls(**options)
    except DsimError:
        raise
    except (TypeError, ValueError) as error:  # an option it does not take, or a bad value
        raise DsimError(f"extractor {name!r}: {error}") from None


#: the ``_target_`` of dsim's own extractor configs (``conf/extractor/*.yaml``)
BUILD_TARGET = "dsim.extractors.build"


def from_config(extractor_cfg: dict, *, layer: str | None = None):
    """The extractor of a config group: a registered ``name``, or a project's own class (``_target_``)."""
    options = {k: v for k, v in extractor_cfg.items() if k not in ("_target_", "name")}
    if layer is not None:
        options["layer"] = layer
    target = extractor_cfg.get("_target_")
    if target and target != BUILD_TARGET:
        from dsim.util.plugins import locate

        return instantiate(locate(target), extractor_cfg.get("name") or target, options)
    return build(extractor_cfg["name"], **options)
