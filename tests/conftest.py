"""Shared fixtures (helpers live in dsim_testing.py)."""

from __future__ import annotations

from pathlib import Path

import os

import pytest

from dsim_testing import write_crops


def pytest_addoption(parser):
    parser.addoption("--heavy", action="store_true", help="also run the tests marked heavy (minutes each)")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``heavy`` are skipped unless ``--heavy`` is given (``slow`` ones always run)."""
    if config.getoption("--heavy"):
        return
    skip = pytest.mark.skip(reason="heavy: run with pytest --heavy")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def crops(tmp_path_factory) -> dict[str, Path]:
    """Two disjoint-seed crop sets of real photos (``a``, ``b``), 24 images each."""
    root = tmp_path_factory.mktemp("crops")
    write_crops(root / "a", 24, seed=1)
    write_crops(root / "b", 24, seed=2)
    return {"a": root / "a", "b": root / "b"}


@pytest.fixture(scope="session", autouse=True)
def _private_hash_memo(tmp_path_factory):
    """Each test session keeps its hash memo (``dsim.data.hash_memo``) to itself, subprocesses included."""
    os.environ["DSIM_STATE_DIR"] = str(tmp_path_factory.mktemp("dsim-state"))
    yield
