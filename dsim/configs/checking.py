"""Checking a resolved cell config: every key against the files it was composed from, every value against
the schema's types (:mod:`dsim.configs.schema`).

A key the files do not have is a typo (``unknown key 'metrc' (did you mean 'metric'?)``); a value of
another type than the schema's (or, for a key the schema does not type, than its default's), or outside
its range or choices, is a one-line :class:`~dsim.errors.DsimError` naming the key, what it must be and
what it got. Whether null is allowed is the files' say: a key whose shipped default is null takes null.
Open tables (the dataset catalogue, metric parameters) are left to their owners, which check names and
values themselves.
"""

from __future__ import annotations

import difflib
import numbers
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Annotated, Literal

from dsim.configs.files import GROUPS, choices_of, defaults
from dsim.configs.schema import CellConfig, Max, Min, Node, node_type
from dsim.errors import DsimError


@dataclass(frozen=True)
class Rule:
    """What one config value must be: its ``kind`` (bool, int, float, str, list, or ``None``: anything),
    whether null is allowed, its ``choices``, its ``minimum`` and ``maximum``, and the kind of a list's items."""

    kind: type | None
    nullable: bool = False
    choices: tuple = ()
    minimum: float | None = None
    item: type | None = None
    maximum: float | None = None

    def describe(self) -> str:
        if self.kind is list and self.item is not None:
            what = Rule(self.item, minimum=self.minimum).describe().removeprefix("an ").removeprefix("a ")
            return f"a list of {what}s"
        minimum = f" >= {self.minimum}" if self.minimum is not None else ""
        if self.maximum is not None:
            minimum = f" in [{self.minimum}, {self.maximum}]" if self.minimum is not None else f" <= {self.maximum}"
        names: dict[type | None, str] = {
            bool: "true or false",
            int: f"an integer{minimum}",
            float: f"a number{minimum}",
            str: "a non-empty string",
            list: "a list",
        }
        return names.get(self.kind, "set")

    def accepts(self, value) -> bool:
        if value is None:
            return self.nullable
        if self.choices:
            return value in self.choices
        kind = self.kind
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        elif kind is str:
            ok = isinstance(value, str) and value != ""
        elif kind is list:
            ok = isinstance(value, (list, tuple)) and (
                self.item is None or all(isinstance(v, self.item) and not isinstance(v, bool) for v in value)
            )
        else:
            ok = True
        if ok and self.minimum is not None and isinstance(value, numbers.Real):
            ok = float(value) >= self.minimum
        if ok and self.maximum is not None and isinstance(value, numbers.Real):
            ok = float(value) <= self.maximum
        return ok


def _leaf_rule(hint) -> Rule:
    """A schema annotation as a rule (nullability is the files' say, set by :func:`rule_of`)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] if _is_union(hint) else [hint]
    (hint,) = args
    minimum = maximum = None
    if typing.get_origin(hint) is Annotated:
        base, *extras = typing.get_args(hint)
        minimum = next((e.value for e in extras if isinstance(e, Min)), None)
        maximum = next((e.value for e in extras if isinstance(e, Max)), None)
        hint = base
    if typing.get_origin(hint) is Literal:
        return Rule(str, choices=typing.get_args(hint))
    if typing.get_origin(hint) in (tuple, list):
        item = typing.get_args(hint)[0]
        return Rule(list, item=item if item in (int, str) else None)
    return Rule(hint if hint in (bool, int, float, str) else None, minimum=minimum, maximum=maximum)


def _is_union(hint) -> bool:
    return typing.get_origin(hint) is typing.Union or type(hint).__name__ == "UnionType"


def _schema_rules(cls: type[Node], prefix: str, rules: dict, open_tables: set) -> None:
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in fields(cls):
        hint, path = hints[f.name], prefix + f.name
        if typing.get_origin(hint) is Annotated and "source" in typing.get_args(hint)[1:]:
            continue
        nested = node_type(hint)
        if nested is not None:
            _schema_rules(nested, path + ".", rules, open_tables)
        elif typing.get_origin(hint) is Mapping:
            open_tables.add(path)
        else:
            rules[path] = _leaf_rule(hint)


RULES: dict[str, Rule] = {}
#: tables whose keys are not fixed by the files: their owners check them
OPEN_TABLES: set[str] = set()
_schema_rules(CellConfig, "", RULES, OPEN_TABLES)


def rule_of(path: str, default) -> Rule:
    """The rule for the value at ``path`` (``analysis.umap.seed``) whose shipped default is ``default``: the
    schema's where it types the key, else the default's type (the keys of a user's own extractor option)."""
    rule = RULES.get(path)
    if rule is None:
        kind = None if default is None else type(default)
        rule = Rule(kind, item=_item_kind(default))
    return Rule(rule.kind, default is None, rule.choices, rule.minimum, rule.item, rule.maximum)


def check(cfg: Mapping, choices: dict[str, object] | None = None, conf_dirs=None, *, owned=()) -> None:
    """Raise a one-line :class:`DsimError` for the first unknown key or bad value of a resolved cell config;
    ``owned``: top-level nodes that no config file describes and whose owner checks them (a generator that
    ``dsim.compare`` was given as a dict: :class:`~dsim.generators.GeneratorSpec` checks it)."""
    schema = defaults(choices or choices_of(cfg), conf_dirs)
    schema.setdefault("force", False)
    _check_node({key: value for key, value in cfg.items() if key not in owned}, schema, "")


def _check_node(value: dict, schema: dict, prefix: str) -> None:
    for key, item in value.items():
        path = f"{prefix}{key}"
        if key not in schema:
            raise DsimError(f"unknown key {path!r}{_suggest(key, schema, prefix)}")
        if path in OPEN_TABLES:
            if not isinstance(item, dict):
                raise DsimError(f"{path} must be a table of keys, got {item!r}")
            continue
        default = schema[key]
        if isinstance(default, dict):
            if not isinstance(item, dict):
                raise DsimError(f"{path} must be a table of keys ({', '.join(default) or 'none'}), got {item!r}")
            _check_node(item, default, path + ".")
        else:
            check_value(path, item, default)


def check_value(path: str, value, default) -> None:
    """Check one value against its rule (:func:`rule_of`)."""
    rule = rule_of(path, default)
    if rule.accepts(value):
        return
    what = f"one of {', '.join(rule.choices)}" if rule.choices else rule.describe()
    raise DsimError(f"{path} must be {what}, got {'null' if value is None else repr(value)}")


def _item_kind(default) -> type | None:
    """The type every item of a non-empty default list shares (int or str), else None (anything goes)."""
    if not isinstance(default, (list, tuple)) or not default:
        return None
    kinds = {type(v) for v in default}
    return kinds.pop() if len(kinds) == 1 and kinds <= {int, str} else None


def unknown_key_message(path: str, schema: dict, *, in_table: bool = False) -> str:
    """``unknown key 'a.b'`` with the closest real key of its table (from ``schema``, see :func:`defaults`);
    ``in_table``: the key came inside a table value (``generator.params={a:1}``), so say how keys are set."""
    node, prefix = schema, ""
    parts = path.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            break
        node, prefix = node[part], f"{prefix}{part}."
    key = path[len(prefix) :]
    group = prefix.split(".", 1)[0]
    chosen = (schema.get(group) or {}).get("name") if group in GROUPS and isinstance(schema.get(group), dict) else None
    return f"unknown key {path!r}" + _suggest(
        key,
        node,
        prefix,
        owner=f" with {group}={chosen}" if chosen else "",
        how=f"; set them as {prefix}KEY=VALUE" if in_table and prefix else "",
    )


def _suggest(key: str, schema: dict, prefix: str, *, owner: str = "", how: str = "") -> str:
    close = difflib.get_close_matches(key, [str(k) for k in schema], n=1, cutoff=0.6)
    if close:
        return f" (did you mean {prefix + close[0]!r}?)"
    table = prefix.rstrip(".")
    if not schema:
        return f" ({table or 'the config'} takes no keys{owner})"
    return f" (known keys{' of ' + table if table else ''}: {', '.join(sorted(map(str, schema)))}{how})"
