"""A project's own extractors and metrics: ``_target_`` in its config files, or package entry points.

- ``conf/extractor/NAME.yaml`` with ``_target_: mypackage.MyExtractor`` (a subclass of
  :class:`dsim.extractors.Extractor`) and its options; ``conf/metric/NAME.yaml`` with ``_target_:
  mypackage.my_metric`` (a function ``(reference, candidate, **params) -> dict``) and ``higher_is_better``.
  The project's folder is on ``sys.path`` for the ``dsim`` command, so a ``mymodule.py`` beside ``conf/``
  works without installing anything.
- An installed package can declare entry points instead: group ``dsim.extractors`` (name → class) and
  group ``dsim.metrics`` (name → a module that calls :func:`dsim.metrics.register`, or the metric function).

No code is loaded from data: only the modules a project's own config or installed packages name.
"""

from __future__ import annotations

import importlib

from dsim.errors import DsimError


def locate(target: str):
    """``package.module.Name`` (or ``package.module:Name``) → the object, or a one-line error."""
    module_name, _, attribute = target.replace(":", ".").rpartition(".")
    if not module_name:
        raise DsimError(f"_target_ {target!r} is not a dotted path (package.module.Name)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise DsimError(
            f"_target_ {target!r}: cannot import {module_name} ({error}); install the package or put "
            "the module beside conf/"
        ) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise DsimError(f"_target_ {target!r}: module {module_name} has no {attribute!r}") from None


def entry_point(group: str, name: str):
    """The object an installed package declares as entry point ``name`` of ``group`` (``None`` if none)."""
    from importlib.metadata import entry_points

    for point in entry_points(group=group):
        if point.name == name:
            try:
                return point.load()
            except Exception as error:  # noqa: BLE001 - a broken plugin is the user's to fix, in one line
                raise DsimError(f"entry point {name!r} of {group} ({point.value}) failed to load: {error}") from None
    return None
