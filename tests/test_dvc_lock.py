"""The tracked DVC files agree with the tree: on a fresh checkout with the default data written (``dsim data``),
``dvc status`` reports no changed dependency except the pipeline's own not-yet-made outputs, and the data
matches ``data.dvc``. When this fails after a change to conf/ or to the data generators, run the pipeline
(``dvc repro``) and commit ``dvc.lock``, ``data.dvc`` and ``results/*.json``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dsim_testing import REPO, run_dsim

#: dependencies that are outputs of an earlier stage: absent (not in DVC's cache) on a fresh checkout
MADE_BY_THE_PIPELINE = {"embeddings": "modified", "results/sweep": "deleted"}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """The working tree's tracked (and new, unignored) files in a new git repository, default data written."""
    root = tmp_path_factory.mktemp("checkout")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    root.joinpath("data_output.txt").write_text(run_dsim("data", cwd=root).stdout)
    return root


@pytest.mark.slow
def test_the_generated_data_is_the_committed_data(checkout):
    assert "data matches the committed version" in (checkout / "data_output.txt").read_text()


@pytest.mark.slow
def test_dvc_status_reports_no_changed_dependency(checkout):
    done = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=checkout, capture_output=True,
                          text=True, check=True)
    changed = {
        f"{stage}: {path}": change
        for stage, entries in json.loads(done.stdout or "{}").items()
        for entry in entries
        if isinstance(entry, dict)
        for path, change in entry.get("changed deps", {}).items()
        if MADE_BY_THE_PIPELINE.get(path) != change
    }
    assert not changed, f"dvc.lock is stale ({changed}): run `dvc repro` and commit dvc.lock"
