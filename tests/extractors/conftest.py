"""Fixtures of the extractor tests: bundled photos, and an empty offline weights environment."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """scikit-image's bundled photographs (no download)."""
    from skimage import data

    return {name: getattr(data, name)() for name in ("chelsea", "coffee", "astronaut", "rocket")}


@pytest.fixture
def offline_home(tmp_path, monkeypatch):
    """Empty TORCH_HOME and HF_HOME, HF_HUB_OFFLINE=1: no weights anywhere, no download attempted."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # torch.hub.get_dir() follows TORCH_HOME
    return tmp_path
