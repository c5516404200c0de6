"""A griffe extension for the API reference: dsim's docstrings are reStructuredText-flavoured prose with
doctest examples; mkdocstrings renders Markdown. This shows each ``>>>`` example as a Python code block
(rather than as prose, where ``x["a"]["b"]`` would read as a Markdown link) and each Sphinx role
(``:class:`~dsim.x.Y```) as inline code. The docstrings themselves are left alone."""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj|py:\w+):`~?([^`]+)`")
_FLAGS = re.compile(r"\s*#\s*doctest:\s*[+\-][A-Z_]+(?:\s*,\s*[+\-][A-Z_]+)*")


def _role(match: re.Match) -> str:
    target = match.group(1)
    shown = target.rsplit(".", 1)[-1] if match.group(0).split("`")[1].startswith("~") else target
    return f"`{shown}`"


def markdown(text: str) -> str:
    """``text`` with doctest blocks fenced and Sphinx roles as inline code."""
    out, block = [], []

    def flush():
        if block:
            out.extend(["```pycon", *block, "```"])
            block.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(">>>") or (block and stripped and not stripped.startswith(">>>")):
            block.append(_FLAGS.sub("", line.rstrip()) if stripped.startswith(">>>") else line.rstrip())
            continue
        flush()
        out.append(_ROLE.sub(_role, line))
    flush()
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
