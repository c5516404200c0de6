"""``dsim cache``: the embedding store — import embedding files, show what is there, clean it up.

- ``dsim cache import PATH...``: load embedding files (``dsim embed --out``) into the store. Folders are
  searched recursively for ``.npz`` files. Each vector goes under the extractor identity it was computed
  with, so only cells with exactly that extractor, weights, layer and preprocessing use it.
- ``dsim cache info [--json]``: per identity (extractor or entropy): entries, shards, size, old per-file
  entries; then every byte under the cache folder by kind (:data:`KINDS`: embeddings, memo, in_memory,
  perturbed, generated, ..., and ``other`` for anything dsim does not know), so the total is the folder's size.
- ``dsim cache gc [--keep DIR ...] [--dry-run] [--wait]``: drop the derived datasets (``perturbed/``,
  ``generated/``: made again from their recipe when needed; ``in_memory/``: written again by the next call that
  passes those images) that are not kept, then the entries no kept
  dataset references (default: the datasets of the configured catalogue, ``conf/dataset/default.yaml``),
  and identities left empty. An identity that a running dsim process reads (its lease is held) is left
  alone, or with ``--wait`` dropped once that process is done.
- ``dsim cache verify [DIR ...]``: re-hash every byte of the given dataset folders (the hash memo is
  corrected where it was stale) and check every stored vector against its checksum (a row that fails is
  dropped, to be recomputed). Exits 1 when anything was wrong.
- ``dsim cache migrate``: move an old cache's one-file-per-vector entries into shards, and give shards
  written before checksums (dsim 0.2) their checksums.
- ``dsim cache compact``: merge small shards now (dsim does it when a writer finishes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from dsim.data import derived, in_memory
from dsim.embeddings.embed import DEFAULT_CACHE_DIR, LOCK_DIR
from dsim.errors import DsimError


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="dsim cache", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    sub = parser.add_subparsers(dest="action", required=True)
    imp = sub.add_parser("import", help="load embedding files (.npz) into the store")
    imp.add_argument("paths", nargs="+", help=".npz files or folders of them (e.g. embeddings/)")
    info = sub.add_parser("info", help="entries, shards and size per identity; every byte of the cache by kind")
    info.add_argument("--json", action="store_true", help="print the numbers as JSON (exact byte counts)")
    gc = sub.add_parser("gc", help="drop derived datasets and entries no kept dataset references")
    gc.add_argument(
        "--keep",
        action="append",
        default=None,
        metavar="DIR",
        help="a dataset folder whose images stay (repeatable; default: the configured catalogue)",
    )
    gc.add_argument("--dry-run", action="store_true", help="only say what would be dropped")
    gc.add_argument(
        "--wait",
        action="store_true",
        help="wait for running dsim processes that read an identity, instead of leaving it alone",
    )
    verify = sub.add_parser("verify", help="re-hash dataset folders and check every stored vector's checksum")
    verify.add_argument("datasets", nargs="*", metavar="DIR", help="dataset folders to re-hash byte for byte")
    sub.add_parser("migrate", help="move old per-file entries into shards, add checksums to old shards")
    sub.add_parser("compact", help="merge small shards")
    for action in sub.choices.values():
        action.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR)
    args = parser.parse_args(argv)
    {"import": _import, "info": _info, "gc": _gc, "verify": _verify, "migrate": _migrate, "compact": _compact}[
        args.action
    ](args)


def _import(args) -> None:
    from dsim.embeddings.npz import check_npz, find_npz, import_npz

    files = find_npz(args.paths)
    if not files:
        raise DsimError(f"no .npz embedding files under {', '.join(args.paths)}")
    checked = [check_npz(path, args.cache_dir) for path in files]  # every file, before anything is written
    added = present = 0
    for path, contents in zip(files, checked):
        done = import_npz(path, args.cache_dir, contents=contents)
        added, present = added + done.added, present + done.present
        print(f"{path}: {done.extractor} [{done.identity[:16]}] {done.added} added, {done.present} already cached")
    print(f"{len(files)} file(s): {added} vector(s) added to {args.cache_dir}, {present} already there")


def _stores(cache_dir):
    from dsim.embeddings.store import identities, open_identity

    folders = identities(cache_dir)
    if not folders:
        print(f"no embedding store in {cache_dir}")
    return [open_identity(folder) for folder in folders]


#: the kinds of what a cache folder holds, in the order ``dsim cache info`` lists them: a top-level folder's
#: name → its kind (identity folders are ``embeddings``, or ``entropy``; their ``memo/`` is ``memo``)
KINDS = ("embeddings", "entropy", "memo", "in_memory", "perturbed", "generated", "umap", "locks", "other")
KIND_FOLDERS = {
    **{kind: kind for kind in derived.KINDS},
    in_memory.KIND: "in_memory",
    "umap": "umap",
    LOCK_DIR: "locks",
}


def disk_usage(cache_dir) -> dict[str, dict[str, int]]:
    """Files and bytes under ``cache_dir`` by kind (:data:`KINDS`; every kind present, ``other`` for what dsim
    does not know), like ``du -b``: apparent sizes, symbolic links not followed (a link counts its own size),
    a file with several hard links once. The kinds' bytes add up to every byte under the folder."""
    from dsim.embeddings.store import MEMO_DIR, identities

    root = Path(cache_dir)
    usage = {kind: {"files": 0, "bytes": 0} for kind in KINDS}
    if not root.is_dir():
        return usage
    stores = {folder.name for folder in identities(root)}
    seen: set[tuple[int, int]] = set()

    def add(kind: str, info: os.stat_result) -> None:
        if info.st_nlink > 1:
            if (info.st_dev, info.st_ino) in seen:
                return
            seen.add((info.st_dev, info.st_ino))
        usage[kind]["files"] += 1
        usage[kind]["bytes"] += info.st_size

    def walk(folder: str, kind: str, memo: bool = False) -> None:
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            walk(entry.path, "memo" if memo and entry.name == MEMO_DIR else kind)
                        else:
                            add(kind, entry.stat(follow_symlinks=False))
                    except FileNotFoundError:  # removed meanwhile (a writer's temporary file)
                        continue
        except (FileNotFoundError, NotADirectoryError):
            return

    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            try:
                if not entry.is_dir(follow_symlinks=False):
                    add("other", entry.stat(follow_symlinks=False))
                elif entry.name in stores:
                    walk(entry.path, "entropy" if entry.name.rsplit("-", 1)[0] == "entropy" else "embeddings", True)
                else:
                    walk(entry.path, KIND_FOLDERS.get(entry.name, "other"))
            except FileNotFoundError:
                continue
    return usage


def _info(args) -> None:
    from dsim.embeddings.store import identities, open_identity

    rows = [open_identity(folder).info() for folder in identities(args.cache_dir)]
    usage = disk_usage(args.cache_dir)
    total = {"files": sum(u["files"] for u in usage.values()), "bytes": sum(u["bytes"] for u in usage.values())}
    if args.json:
        facts = {"cache_dir": str(args.cache_dir), "identities": rows, "kinds": usage, "total": total}
        print(json.dumps(facts, indent=2))
        return
    if not rows:
        print(f"no embedding store in {args.cache_dir}")
    else:
        print(f"{'identity':34s} {'dim':>5s} {'entries':>9s} {'shards':>6s} {'size':>10s}  old files / shards")
        for row in rows:
            old = f"{row['legacy_files'] or '-'} / {row['unchecked_shards'] or '-'}"
            print(
                f"{row['name'] + '-' + row['identity'][:16]:34s} {row['dim']:5d} {row['entries']:9d} "
                f"{row['shards']:6d} {_size(row['bytes']):>10s}  {old}"
            )
        print(
            f"{len(rows)} identities, {sum(r['entries'] for r in rows)} entries, "
            f"{_size(sum(r['bytes'] for r in rows))} in {args.cache_dir}"
        )
    if not total["files"]:
        return
    print()
    print(f"{'kind':34s} {'files':>9s} {'size':>10s}")
    for kind, used in usage.items():
        if used["files"]:
            print(f"{kind:34s} {used['files']:9d} {_size(used['bytes']):>10s}")
    print(f"{'all kinds':34s} {total['files']:9d} {_size(total['bytes']):>10s} in {args.cache_dir}")


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _kept_datasets(keep: list[str] | None) -> list[Path]:
    if keep:
        return [Path(k) for k in keep]
    import yaml

    from dsim.configs import CONF_DIR

    catalogue = yaml.safe_load((CONF_DIR / "dataset" / "default.yaml").read_text()) or {}
    root = Path(catalogue.get("root", "data"))
    return [root / sub for sub in (catalogue.get("catalog") or {}).values()]


def _gc_derived(cache_dir: str, kept_folders: list[Path], dry_run: bool) -> None:
    """Drop the derived dataset folders (and in-memory images' folders) under ``cache_dir`` that are not among
    ``kept_folders``."""
    kept = {folder.resolve() for folder in kept_folders}
    held = sorted(
        p for p in (Path(cache_dir) / in_memory.KIND).glob("*") if p.is_dir() and not p.name.startswith(".")
    )  # (".tmp-*" folders are being written)
    for folder in derived.derived_folders(Path(cache_dir)) + held:
        if folder.resolve() in kept:
            print(f"{folder}: kept")
            continue
        files = [p for p in folder.rglob("*") if p.is_file()]
        what = f"{folder}: drop the derived dataset ({len(files)} files, {_size(sum(p.stat().st_size for p in files))})"
        if dry_run:
            print(what + " [dry run]")
        elif derived.remove(folder):
            print(what)
        else:
            print(f"{folder}: being made by another process, left alone")


def _gc(args) -> None:
    from dsim.data.images import scan_images

    kept_folders = _kept_datasets(args.keep)
    for folder in kept_folders:  # a mistyped --keep drops nothing
        if not folder.is_dir():
            raise DsimError(
                f"dataset folder to keep does not exist: {folder} (pass --keep DIR for each dataset "
                "whose embeddings should stay)"
            )
    _gc_derived(args.cache_dir, kept_folders, args.dry_run)
    kept: set[str] = set()
    for folder in kept_folders:
        kept.update(ref.sha256 for ref in scan_images(folder, on_error="skip").files)
    from dsim.embeddings.store import note_gc

    for store in _stores(args.cache_dir):
        label = f"{store.name}-{store.identity[:16]}"
        with store.exclusive(wait=args.wait) as free:  # no running process reads it meanwhile
            if not free:
                print(
                    f"{label}: in use by a running dsim process, left alone (run gc again when it is done, "
                    "or pass --wait)"
                )
                continue
            if not args.dry_run:
                store.migrate_legacy()
            hashes = store.index_hashes()
            referenced = [h for h in hashes if h in kept]
            dropped = len(hashes) - len(referenced)
            if not referenced:
                print(
                    f"{label}: drop the whole identity ({len(hashes)} entries)" + (" [dry run]" if args.dry_run else "")
                )
                if not args.dry_run:
                    note_gc(store.directory.parent, dropped)
                    shutil.rmtree(store.directory)
            elif dropped:
                print(f"{label}: drop {dropped} of {len(hashes)} entries" + (" [dry run]" if args.dry_run else ""))
                if not args.dry_run:
                    note_gc(store.directory, dropped)
                    store.compact(keep=referenced)
            else:
                print(f"{label}: all {len(hashes)} entries referenced")


def _verify(args) -> None:
    """Re-hash the given folders (correcting the hash memo), then check every stored row's checksum."""
    from dsim.data.images import rehash_images

    problems = 0
    for folder in args.datasets:
        stale = rehash_images(folder)
        problems += len(stale)
        print(
            f"{folder}: every byte re-hashed; "
            + (
                f"{len(stale)} file(s) had changed without their size, "
                f"times or inode saying so (the hash memo is corrected): {', '.join(stale[:5])}"
                + (" ..." if len(stale) > 5 else "")
                if stale
                else "the hash memo was right about every file"
            )
        )
    for store in _stores(args.cache_dir):
        found = store.verify()
        problems += found["dropped"]
        label = f"{store.name}-{store.identity[:16]}"
        note = (
            f", {found['unverified']} in shards without checksums (`dsim cache migrate` adds them)"
            if found["unverified"]
            else ""
        )
        print(
            f"{label}: {found['checked']} vectors checked, {found['dropped']} failed and were dropped "
            f"(recomputed when needed){note}"
        )
    if problems:
        raise SystemExit(1)


def _migrate(args) -> None:
    moved = 0
    for store in _stores(args.cache_dir):
        count = store.migrate_legacy()
        if count:
            print(f"{store.name}-{store.identity[:16]}: {count} entries moved into a shard")
        moved += count
    print(f"{moved} old per-file entries migrated" if moved else "nothing to migrate")


def _compact(args) -> None:
    for store in _stores(args.cache_dir):
        merged = store.compact()
        print(
            f"{store.name}-{store.identity[:16]}: {merged} small shards merged"
            if merged
            else f"{store.name}-{store.identity[:16]}: nothing to merge"
        )
