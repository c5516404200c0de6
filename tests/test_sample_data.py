"""The embedded default datasets: deterministic bytes, the right shapes, and pairs that differ as documented."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dsim.data import samples as sample_data
from dsim.errors import DsimError
from dsim.data.renders import render_planetary_surface

# sha256 over every (dataset, file name, file sha256) of the default datasets. data.dvc pins the same
# bytes: if a change to the generators is intended, run `dsim data`, re-add data/ to DVC and update this.
GOLDEN_DIGEST = "7ce831233ae2c782e3b21c3c13bb6818c5416f90a3b06fa9b2e54dc7e5a2314e"


def tree_digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def load(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])


def laplacian_energy(images: np.ndarray) -> float:
    x = images.astype(np.float64).mean(axis=-1)
    lap = 4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]
    return float(np.abs(lap).mean())


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    written = sample_data.materialize(root, progress=False)
    assert written == {name: root / name for name in sample_data.DEFAULT_DATASETS}
    return root


# --- determinism --------------------------------------------------------------------------------

@pytest.mark.slow
def test_rerun_is_a_noop_and_another_root_gets_identical_bytes(data_root, tmp_path):
    before_hashes, before_times = tree_digests(data_root), mtimes(data_root)
    sample_data.materialize(data_root, progress=False)
    assert tree_digests(data_root) == before_hashes
    assert mtimes(data_root) == before_times            # nothing rewritten

    other = tmp_path / "elsewhere"
    sample_data.materialize(other, progress=False)
    assert tree_digests(other) == before_hashes


def test_output_matches_the_pinned_digest(data_root):
    digest = hashlib.sha256()
    for name in sample_data.DEFAULT_DATASETS:
        for path in sorted((data_root / name).iterdir()):
            digest.update(f"{name}/{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    assert digest.hexdigest() == GOLDEN_DIGEST, (
        "the default datasets' bytes changed: data.dvc no longer matches; if intended, run `dsim data`, "
        "`dvc add data` and update GOLDEN_DIGEST")


def test_root_holds_exactly_the_datasets_and_readme(data_root):
    assert sorted(p.name for p in data_root.iterdir()) == sorted([*sample_data.DEFAULT_DATASETS, "README.md"])
    readme = (data_root / "README.md").read_text(encoding="utf-8")
    assert readme == sample_data.readme_text()
    for name in sample_data.DEFAULT_DATASETS:
        assert f"`{name}/`" in readme
    for source in sample_data.SOURCE_PHOTOS:
        assert source.file in readme


# --- contents -----------------------------------------------------------------------------------

def test_every_dataset_is_n_rgb_pngs_of_the_right_size(data_root):
    n, size = sample_data.N_IMAGES, sample_data.IMAGE_SIZE
    for name in sample_data.DEFAULT_DATASETS:
        files = sorted((data_root / name).iterdir())
        assert [p.name for p in files] == [f"{i:04d}.png" for i in range(n)]
        for path in files:
            with Image.open(path) as image:
                assert image.format == "PNG" and image.mode == "RGB" and image.size == (size, size)
                assert not image.info                     # no metadata of any kind
        images = load(data_root / name)
        assert images.shape == (n, size, size, 3) and images.dtype == np.uint8


def test_photo_sets_differ_and_cover_the_same_sources(data_root):
    a, b = load(data_root / "photos_a"), load(data_root / "photos_b")
    assert not np.array_equal(a, b)
    assert not any(np.array_equal(x, y) for x, y in zip(a, b))
    # round-robin over the sources: grayscale photographs land on the same indices in both sets
    gray = lambda imgs: [bool((im[..., 0] == im[..., 1]).all() and (im[..., 1] == im[..., 2]).all()) for im in imgs]
    assert gray(a) == gray(b)
    assert 0 < sum(gray(a)) < len(a)


def test_blurred_is_photos_b_with_less_high_frequency_energy(data_root):
    b, blurred = load(data_root / "photos_b"), load(data_root / "photos_b_blurred")
    assert not np.array_equal(b, blurred)
    assert laplacian_energy(blurred) < 0.5 * laplacian_energy(b)
    # same content: blurred stays much closer to its own source than to a shuffled one
    own = np.abs(b.astype(int) - blurred).mean()
    other = np.abs(np.roll(b, 1, axis=0).astype(int) - blurred).mean()
    assert own < 0.5 * other


def test_renders_vary_and_are_not_flat(data_root):
    render = load(data_root / "render")
    assert len({img.tobytes() for img in render}) == len(render)
    assert all(img.std() > 5 for img in render)
    # a reddish-ochre palette: red above blue on average, as Mars
    assert render[..., 0].mean() > render[..., 2].mean() + 20


# --- renderer -----------------------------------------------------------------------------------

def test_render_is_deterministic_per_seed_and_sized():
    first = render_planetary_surface(7, size=48)
    assert first.shape == (48, 48, 3) and first.dtype == np.uint8
    assert np.array_equal(first, render_planetary_surface(7, size=48))
    assert not np.array_equal(first, render_planetary_surface(8, size=48))
    with pytest.raises(ValueError):
        render_planetary_surface(0, size=0)


# --- PNG encoder --------------------------------------------------------------------------------

def test_encode_png_roundtrips_and_has_only_critical_chunks():
    image = np.random.default_rng(0).integers(0, 256, size=(300, 257, 3), dtype=np.uint8)  # > 1 stored block
    data = sample_data.encode_png(image)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), image)
    kinds, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body)
        kinds.append(kind)
        pos += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]
    assert sample_data.encode_png(image) == data


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8),
                                 np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8)])
def test_encode_png_rejects_other_arrays(bad):
    with pytest.raises(ValueError):
        sample_data.encode_png(bad)


# --- writing behaviour (small datasets, fast) ---------------------------------------------------

@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(sample_data, "N_IMAGES", 3)


def test_edited_or_partial_datasets_are_repaired(small, tmp_path):
    sample_data.materialize(tmp_path, progress=False)
    good = tree_digests(tmp_path)
    (tmp_path / "photos_a" / "0001.png").write_bytes(b"garbage")
    (tmp_path / "render" / "0002.png").unlink()
    (tmp_path / "photos_b" / "extra.png").write_bytes(b"x")
    (tmp_path / "README.md").write_text("edited")
    untouched = mtimes(tmp_path / "photos_b_blurred")
    sample_data.materialize(tmp_path, progress=False)
    assert tree_digests(tmp_path) == good
    assert mtimes(tmp_path / "photos_b_blurred") == untouched


def test_force_rewrites_identical_files(small, tmp_path):
    sample_data.materialize(tmp_path, progress=False)
    good, before = tree_digests(tmp_path), mtimes(tmp_path / "render")
    (tmp_path / "render" / "0000.png").touch()
    sample_data.materialize(tmp_path, force=True, progress=False)
    assert tree_digests(tmp_path) == good
    assert mtimes(tmp_path / "render") != before


def test_a_failed_write_leaves_the_old_dataset_and_no_leftovers(small, tmp_path, monkeypatch):
    sample_data.materialize(tmp_path, progress=False)
    good = tree_digests(tmp_path)
    (tmp_path / "render" / "0000.png").write_bytes(b"stale")   # forces render to be rewritten
    stale = tree_digests(tmp_path)
    calls, real_write = [], sample_data._write_file

    def failing_write(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        path.write_bytes(data)

    monkeypatch.setattr(sample_data, "_write_file", failing_write)
    with pytest.raises(OSError, match="disk full"):
        sample_data.materialize(tmp_path, progress=False)
    assert tree_digests(tmp_path) == stale                   # old folder intact, nothing half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*sample_data.DEFAULT_DATASETS, "README.md"])
    monkeypatch.setattr(sample_data, "_write_file", real_write)
    sample_data.materialize(tmp_path, progress=False)
    assert tree_digests(tmp_path) == good


def test_leftovers_of_a_killed_run_are_cleaned(small, tmp_path):
    import os

    old = tmp_path / ".render.old-deadbeef"
    tmp = tmp_path / ".render.tmp-deadbeef"
    for folder in (old, tmp):
        folder.mkdir()
        (folder / "0000.png").write_bytes(b"partial")
    os.utime(tmp, (0, 0))                                      # stale
    sample_data.materialize(tmp_path, progress=False)
    assert not old.exists() and not tmp.exists()


def test_progress_bar_goes_to_stderr(small, tmp_path, capsys):
    sample_data.materialize(tmp_path, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "dsim data" in captured.err


def test_root_that_is_a_file_is_a_clear_error(tmp_path):
    target = tmp_path / "data"
    target.write_text("not a folder")
    with pytest.raises(DsimError, match="not a folder"):
        sample_data.materialize(target, progress=False)


def test_unknown_dataset_name_is_a_clear_error():
    with pytest.raises(DsimError, match="photos_a"):
        sample_data.generate_dataset("nope")


def test_descriptions_and_pairs_refer_to_datasets():
    assert list(sample_data.DEFAULT_DATASETS) == ["photos_a", "photos_b", "photos_b_blurred", "render"]
    assert all(isinstance(d, str) and "\n" not in d for d in sample_data.DEFAULT_DATASETS.values())
    for reference, candidate in sample_data.DEFAULT_PAIRS.values():
        assert reference in sample_data.DEFAULT_DATASETS and candidate in sample_data.DEFAULT_DATASETS
