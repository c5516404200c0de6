"""``dsim init [DIR]``: make a git repository a dsim registry — your own datasets, pairs and grids.

Writes, without touching anything that exists already:

- ``conf/pair/example.yaml`` — one pair (``data/reference`` vs ``data/candidate``); ``conf/`` of a
  project adds to or overrides dsim's built-in config groups (``extractor``, ``metric``, ``pair``, ...),
  so ``dsim pair=example`` works from this folder, and so does a ``conf/extractor/mine.yaml`` with a
  ``_target_`` pointing at your own Python code;
- ``dvc.yaml`` — the grid as a DVC stage (``dvc repro`` reruns it when ``data/`` or ``conf/`` change);
- ``.gitignore`` entries for what dsim writes: ``cache/``, ``mlruns/``, ``outputs/``, ``multirun/``, ``report/``;
- ``data/reference/`` and ``data/candidate/`` (empty: put images there, then ``dvc add data``);

and runs ``dvc init`` when the repository is not a DVC project yet.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from dsim.errors import DsimError

EXAMPLE_PAIR = """\
# An example pair: put your reference images (e.g. real photos) in data/reference and the candidate images
# (e.g. synthetic renders) in data/candidate, then `dsim pair=example` or `dsim -m pair=example metric=fid,kid_poly`.
# pair.reference / pair.candidate take a catalogue name (conf/dataset) or any folder.
name: example
reference: data/reference
candidate: data/candidate
"""

DVC_YAML = """\
# The registry's grid as a DVC stage: `dvc repro` reruns it when data/ or conf/ change; `dvc metrics show`.
stages:
  grid:
    cmd: dsim -m pair=example extractor=efficientnet_lite0,pixels metric=fid,kid_poly progress=false
      results_file=results/grid.json hydra.sweep.dir=results/sweep
    deps:
      - data
      - conf
    outs:
      - results/sweep
    metrics:
      - results/grid.json:
          cache: false
"""

#: everything dsim writes in a registry besides its tracked files (dvc.yaml outputs get DVC's own .gitignore)
GITIGNORE = ["/cache/", "/mlruns/", "/outputs/", "/multirun/", "/report/"]


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="dsim init", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("directory", nargs="?", default=".", help="a git repository (default: here)")
    args = parser.parse_args(argv)
    root = Path(args.directory).resolve()
    if not (root / ".git").exists():
        raise DsimError(f"{root} is not a git repository: run `git init` there first (dsim records git revisions)")
    written = []
    for path, text in ((root / "conf" / "pair" / "example.yaml", EXAMPLE_PAIR), (root / "dvc.yaml", DVC_YAML)):
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
    for folder in ("data/reference", "data/candidate"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    missing = [entry for entry in GITIGNORE if entry not in lines]
    if missing:
        ignore.write_text("\n".join(lines + missing) + "\n")
        written.append(ignore)
    if not (root / ".dvc").is_dir():
        done = subprocess.run(
            [sys.executable, "-m", "dvc", "init", "--quiet"], cwd=root, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise DsimError(f"dvc init failed in {root}: {(done.stderr or done.stdout).strip().splitlines()[-1]}")
        written.append(root / ".dvc")
    for path in written:
        print(f"wrote {path.relative_to(root)}")
    print(
        f"{root} is a dsim registry: copy your images into data/reference and data/candidate (the folders' "
        "contents: `cp -r /path/to/real/. data/reference/`), `dvc add data`, then `dsim pair=example`"
    )
