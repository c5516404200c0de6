"""``dsim weights``: list every extractor's default weights; ``dsim weights fetch NAME``: download them.

The list says, for each extractor, whether its weights are ``present`` (with the file's path and
SHA-256), ``missing`` (with where they are expected and the expected SHA-256 when it is known) or
``builtin`` (nothing to fetch). Nothing is downloaded by the listing. ``fetch`` downloads through each
library's normal mechanism (torch.hub, the Hugging Face Hub, dreamsim's downloader) into its usual
cache (``TORCH_HOME``, ``HF_HOME``); offline (``HF_HUB_OFFLINE=1`` or ``DSIM_OFFLINE=1``, or no network)
it fails with one line naming the file and where to put it.
"""

from __future__ import annotations

import argparse
import json
import sys

from dsim.errors import DsimError


def status(name: str) -> dict:
    """One extractor's default-weights record: name, kind, status, where, sha256, source."""
    from dsim.extractors import build

    location = build(name).default_weights()
    record = {"extractor": name, "kind": location.kind, "status": "missing", "where": location.place(),
              "sha256": location.sha256, "source": location.source()}
    if location.kind == "builtin":
        return {**record, "status": "builtin", "where": "-", "sha256": None}
    found = location.locate()
    if found is not None:
        record.update(kind=location.kind, status="present", where=str(found))
        try:
            record["sha256"] = location.checksum_of(found, name).checksum.removeprefix("sha256:")
        except DsimError as error:  # present but wrong checksum, or an incomplete folder
            record.update(status="invalid", error=str(error))
    return record


def fetch(name: str) -> dict:
    """Make ``name``'s default weights present (downloading when needed); return its record."""
    from dsim.extractors import build

    location = build(name).default_weights()
    if location.kind != "builtin" and location.locate() is None:
        if not location.can_fetch():
            raise DsimError(location.missing_message(name))
        path = location.fetch_or_explain(name)
        location.checksum_of(path, name)  # verifies a pinned checksum
    return status(name)


def _table(records: list[dict]) -> str:
    lines = [f"{'extractor':26s} {'status':8s} {'kind':9s} {'sha256':16s}  where"]
    for r in records:
        digest = (r["sha256"] or "-")[:16] if r["status"] != "missing" else \
            ("expect " + r["sha256"][:9] if r["sha256"] else "-")
        lines.append(f"{r['extractor']:26s} {r['status']:8s} {r['kind']:9s} {digest:16s}  {r['where']}")
    return "\n".join(lines)


def run(argv: list[str]) -> None:
    from dsim.extractors import available

    parser = argparse.ArgumentParser(prog="dsim weights", description=__doc__.split("\n\n")[0].split(":", 1)[1].strip())
    parser.add_argument("action", nargs="?", choices=("list", "fetch"), default="list")
    parser.add_argument("names", nargs="*", metavar="NAME", help="extractors to fetch (or 'all')")
    parser.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    args = parser.parse_args(argv)

    if args.action == "list":
        unknown = [n for n in args.names if n not in available()]
        if unknown:
            raise DsimError(f"unknown extractor {unknown[0]!r} (choose from: {', '.join(available())})")
        records = [status(name) for name in (args.names or available())]
    else:
        if not args.names:
            raise DsimError("dsim weights fetch: name the extractors to fetch (or 'all')")
        names = available() if args.names == ["all"] else args.names
        for name in names:
            if name not in available():
                raise DsimError(f"unknown extractor {name!r} (choose from: {', '.join(available())})")
        records, failures = [], []
        for name in names:
            try:
                records.append(fetch(name))
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
            print("\nmissing weights: `dsim weights fetch NAME` where online; offline, put the file where shown "
                  "(or pass extractor.weights=PATH)")
