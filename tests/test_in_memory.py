"""Images in memory (arrays, tensors, PIL lists, torch datasets and loaders) through ``dsim.embed`` and
``dsim.compare``: written once to a content-addressed folder under the cache, then like any folder; and
``dsim cache info`` accounting for every byte of the cache by kind."""

import json
import os
import threading
import time

import numpy as np
import pytest
import torch
from dsim_testing import tracking_uri, write_crops
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import dsim
from dsim.cli.commands import cache as cache_command
from dsim.data import in_memory
from dsim.data.images import load_rgb
from dsim.errors import DsimError
from dsim.metrics import compute

N = 70  # more than one loader batch of 32


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """``N`` 32-pixel crops of real photos as PNG files, and the same images as an N×32×32×3 uint8 array."""
    folder = tmp_path_factory.mktemp("in-memory") / "photos"
    paths = write_crops(folder, N, seed=3, size=32)
    return folder, np.stack([load_rgb(p) for p in paths])


def _embed(images, cache, **options):
    return dsim.embed(images, "pixels", cache_dir=cache, progress=False, batch_size=16, num_workers=0, **options)


def _folders(cache):
    return sorted(p for p in (cache / "in_memory").iterdir() if not p.name.startswith("."))


class Items(Dataset):
    """A map-style dataset of (PIL image, label) items, or HWC arrays / CHW tensors alone."""

    def __init__(self, array, form):
        self.array, self.form = array, form

    def __len__(self):
        return len(self.array)

    def __getitem__(self, i):
        if self.form == "pil":
            return Image.fromarray(self.array[i]), i % 3
        if self.form == "hwc":
            return self.array[i]
        return {"image": torch.from_numpy(self.array[i]).permute(2, 0, 1), "label": i}


class Stream(IterableDataset):
    def __init__(self, array):
        self.array = array

    def __iter__(self):
        for image in self.array:
            yield torch.from_numpy(image).permute(2, 0, 1).float() / 255, 0


def test_an_array_embeds_like_the_same_images_saved_as_files(photos, tmp_path):
    folder, array = photos
    cache = tmp_path / "cache"
    files = _embed(folder, cache)
    held = _embed(array, cache)
    assert np.allclose(held.features, files.features) and held.ids == [f"{i:05d}.png" for i in range(N)]
    assert held.root.parent == (cache / "in_memory").resolve() and len(held.root.name) == 64
    assert held.fingerprint == _embed(held.root, cache).fingerprint  # the folder is a dataset like any other
    reversed_ = _embed(np.ascontiguousarray(array[::-1]), cache)  # ids follow the order given
    assert np.array_equal(reversed_.features, held.features[::-1]) and reversed_.root != held.root


def test_every_in_memory_form_gives_the_same_folder_and_embeds_once(photos, tmp_path):
    _, array = photos
    cache = tmp_path / "cache"
    first = _embed(array, cache)
    assert first.n_computed == N
    chw = torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()
    labels = torch.arange(N)
    forms = {
        "tensor uint8 NCHW": chw,
        "tensor float NCHW": chw.float() / 255,
        "array float NHWC": array.astype(np.float32) / 255,
        "array NCHW": chw.numpy(),
        "PIL list": [Image.fromarray(image) for image in array],
        "PIL tuple, RGBA": tuple(Image.fromarray(image).convert("RGBA") for image in array),
        "array list": list(array),
        "TensorDataset": TensorDataset(chw, labels),
        "Dataset of (PIL, label)": Items(array, "pil"),
        "Dataset of HWC arrays": Items(array, "hwc"),
        "Dataset of dicts": Items(array, "dict"),
        "IterableDataset": Stream(array),
        "DataLoader": DataLoader(TensorDataset(chw, labels), batch_size=32),
        "DataLoader, float": DataLoader(TensorDataset(chw.float() / 255), batch_size=32),
        "DataLoader of items": DataLoader(Items(array, "pil"), batch_size=32, collate_fn=list),
        "DataLoader, iterable": DataLoader(Stream(array), batch_size=32),
    }
    for form, images in forms.items():
        again = _embed(images, cache)
        assert again.root == first.root, form
        assert again.n_computed == 0, form  # nothing embedded again: the store has every image
        assert np.array_equal(again.features, first.features), form
    assert _folders(cache) == [first.root]
    assert not list((cache / "in_memory").glob(".tmp-*"))  # the streamed copies of an existing folder: dropped


def test_grayscale_and_mixed_sizes(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(5, 20, 24), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=3)
    cache = tmp_path / "cache"
    assert _embed(gray, cache).root == _embed(rgb, cache).root == _embed(torch.from_numpy(gray)[:, None], cache).root
    mixed = [Image.fromarray(rgb[0]), Image.fromarray(rgb[1][:10]), Image.fromarray(gray[2]).convert("L")]
    made = in_memory.materialize(mixed, cache)
    assert made.n == 3 and [load_rgb(made.folder / f"{i:05d}.png").shape for i in range(3)] == [
        (20, 24, 3), (10, 24, 3), (20, 24, 3)]
    assert _embed(mixed, cache).features.shape == (3, 768)


def test_what_is_not_images_is_one_line(tmp_path):
    cache = tmp_path / "cache"
    images = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    cases = {
        "2-D .* feature matrix": np.zeros((4, 8), dtype=np.float32),
        "no images": np.zeros((0, 8, 8, 3), dtype=np.uint8),
        "no images: the in-memory input is empty": [],
        "dtype int64: images are uint8": images.astype(np.int64),
        r"float pixels must be in \[0, 1\], found \[255, 255\] \(divide by 255": images.astype(np.float32) + 255,
        "undo the normalisation": images.astype(np.float32) - 0.5,
        "NaN or infinite": np.full((2, 4, 4, 3), np.nan, dtype=np.float32),
        "no axis of 1 .* or 3": np.zeros((2, 8, 8, 4), dtype=np.uint8),
        "shape \\(8,\\)": np.zeros(8, dtype=np.uint8),
        "single PIL image: pass a list": Image.fromarray(images[0]),
        "cannot read set as images: images are": {1, 2},
        "item 1 is a str, not an image": [images[0], "a.png"],
        "dict without an 'image' or 'img' key": [{"pixels": images[0]}],
    }
    for message, value in cases.items():
        with pytest.raises(DsimError, match=message):
            in_memory.materialize(value, cache)
    with pytest.raises(DsimError, match="feature matrix"):
        _embed(np.zeros((4, 8), dtype=np.float32), cache)
    with pytest.raises(DsimError, match="cannot read int as images"):
        _embed(3, cache)
    assert not list((cache / "in_memory").glob(".tmp-*"))  # a failed stream leaves no temporary folder


def test_writers_at_once_make_one_folder_and_leftovers_are_cleaned(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(40, 16, 16, 3), dtype=np.uint8)
    root = tmp_path / "cache" / "in_memory"
    root.mkdir(parents=True)
    stale = root / ".tmp-1-killed"
    stale.mkdir()
    (stale / "00000.png").write_bytes(b"half")
    os.utime(stale, (time.time() - 2 * in_memory.STALE_TMP_S,) * 2)
    made, errors = [], []

    def write():
        try:
            made.append(in_memory.materialize(TensorDataset(torch.from_numpy(images)), tmp_path / "cache"))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len({m.folder for m in made}) == 1
    (folder,) = _folders(tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == [".complete.json"] + [f"{i:05d}.png" for i in range(40)]
    assert not list(root.glob(".tmp-*"))
    assert np.array_equal(np.stack([load_rgb(p) for p in sorted(folder.glob("*.png"))]), images)
    assert json.loads((folder / ".complete.json").read_text())["images"] == 40
    assert in_memory.materialize(images, tmp_path / "cache").folder == folder  # the array: hashed, found


def test_a_long_stream_names_its_files_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(in_memory, "_width", lambda n: 5 if n <= 10 else 6)  # 12 images need a wider name
    images = np.arange(12 * 2 * 2 * 3, dtype=np.uint8).reshape(12, 2, 2, 3)
    made = in_memory.materialize(Stream(images), tmp_path)  # no length: the names are fixed at the end
    assert sorted(p.name for p in made.folder.glob("*.png")) == [f"{i:06d}.png" for i in range(12)]


def test_two_dimensional_arrays_still_mean_features():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)), rng.normal(0.5, 1.0, size=(50, 5))
    assert dsim.compare(x, y, metrics="fid") == {"fid": dict(compute("fid", x, y))}
    assert dsim.compare(torch.from_numpy(x), torch.from_numpy(y), metrics="fid")["fid"] == pytest.approx(
        dict(compute("fid", x, y)))
    with pytest.raises(DsimError, match="both sides as feature arrays"):
        dsim.compare(x, np.zeros((4, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(DsimError, match="names= names in-memory images"):
        dsim.compare(x, y, names=("a", "b"))


@pytest.mark.slow
def test_compare_takes_in_memory_images_like_folders(photos, tmp_path):
    folder, array = photos
    other = tmp_path / "other"
    write_crops(other, 30, seed=4, size=32)
    other_array = np.stack([load_rgb(p) for p in sorted(other.glob("*.png"))])
    options = {"extractor": "pixels", "progress": False, "cache_dir": str(tmp_path / "cache"), "batch_size": 16}
    metrics = ("fid", "kid_poly")
    params = {"kid_poly": {"subset_size": 20}}
    folders = dsim.compare(folder, other, metrics=metrics, params=params, **options)
    arrays = dsim.compare(array, other_array, metrics=metrics, params=params, **options)
    mixed = dsim.compare(DataLoader(TensorDataset(torch.from_numpy(array).permute(0, 3, 1, 2)), batch_size=32),
                         other, metrics="fid", **options)
    assert arrays == folders and mixed["fid"] == folders["fid"]
    with pytest.raises(DsimError, match="names= names in-memory sides only"):
        dsim.compare(array, other, names=(None, "other"), **options)
    with pytest.raises(DsimError, match="both sides are named 'same' but hold different images"):
        dsim.compare(array, other_array, names=("same", "same"), **options)


@pytest.mark.slow
def test_compare_records_in_memory_images(photos, tmp_path):
    _, array = photos
    rng = np.random.default_rng(5)
    noisy = np.clip(array.astype(int) + rng.integers(-30, 30, size=array.shape), 0, 255).astype(np.uint8)
    options = {"extractor": "pixels", "progress": False, "cache_dir": str(tmp_path / "cache"),
               "tracking.uri": tracking_uri(tmp_path)}
    got = dsim.compare(array, noisy, metrics="fid", record=True, job_dir=tmp_path / "jobs", **options)
    record = json.loads((tmp_path / "jobs" / "fid" / "result.json").read_text())
    key = in_memory.materialize(array, tmp_path / "cache").key
    assert record["values"] == got["fid"] and record["tracking"] == "logged"
    assert record["reference_name"] == f"in_memory:{key[:12]}" and record["pair"].startswith(f"in_memory:{key[:12]}_vs_")
    assert record["n_reference"] == N and record["reference"] == str(tmp_path / "cache" / "in_memory" / key)
    named = dsim.compare(array, noisy, metrics="fid", record=True, job_dir=tmp_path / "named",
                         names=("photos", "noisy"), **options)
    again = json.loads((tmp_path / "named" / "fid" / "result.json").read_text())
    assert named == got and again["pair"] == "photos_vs_noisy" and again["candidate_name"] == "noisy"
    assert again["reference_fingerprint"] == record["reference_fingerprint"]
    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking_uri=tracking_uri(tmp_path)).get_run(again["mlflow_run_id"])
    assert run.data.tags["dsim.pair"] == "photos_vs_noisy"


def _du(folder):
    """Bytes of every file under ``folder``, as ``du -b`` counts them (no directories, links not followed)."""
    total = 0
    for top, dirs, files in os.walk(folder):
        total += sum(os.lstat(os.path.join(top, name)).st_size for name in files)
        total += sum(os.lstat(os.path.join(top, name)).st_size for name in dirs if os.path.islink(os.path.join(top, name)))
    return total


def test_cache_info_accounts_for_every_byte_by_kind(photos, tmp_path, capsys):
    from dsim.embeddings.stats_files import memoised_stats

    _, array = photos
    cache = tmp_path / "cache"
    emb = _embed(array[:10], cache)  # embeddings, in_memory, locks
    memoised_stats(emb)  # memo
    for kind, name in (("perturbed", "photos-blur-2-abc"), ("generated", "toy-n4-seed0-def")):
        (cache / kind / name).mkdir(parents=True)
        (cache / kind / name / "0000.png").write_bytes(b"x" * 1000)
        (cache / kind / f".{name}.lock").write_bytes(b"")
    (cache / "umap").mkdir()
    (cache / "umap" / "k.npy").write_bytes(b"u" * 77)
    (cache / "notes.txt").write_bytes(b"n" * 123)  # not dsim's: "other"
    (cache / "stray" / "deep").mkdir(parents=True)
    (cache / "stray" / "deep" / "blob").write_bytes(b"s" * 4567)
    os.symlink(tmp_path / "nowhere", cache / "dangling")  # a link counts its own bytes, like du
    cache_command.run(["info", "--json", "--cache-dir", str(cache)])
    facts = json.loads(capsys.readouterr().out)
    kinds = facts["kinds"]
    assert facts["total"]["bytes"] == sum(k["bytes"] for k in kinds.values()) == _du(cache)
    assert facts["total"]["files"] == sum(len(files) + sum(os.path.islink(os.path.join(top, d)) for d in dirs)
                                          for top, dirs, files in os.walk(cache))
    assert kinds["in_memory"]["bytes"] == _du(cache / "in_memory") and kinds["in_memory"]["files"] == 11
    assert kinds["memo"]["bytes"] == _du(emb.store.memo_dir) > 0
    assert kinds["embeddings"]["bytes"] == _du(emb.store.directory) - _du(emb.store.memo_dir)
    assert kinds["perturbed"] == kinds["generated"] == {"files": 2, "bytes": 1000}
    assert kinds["umap"]["bytes"] == 77 and kinds["other"]["bytes"] == 123 + 4567 + os.lstat(cache / "dangling").st_size
    assert facts["identities"][0]["entries"] == 10 and facts["identities"][0]["bytes"] <= kinds["embeddings"]["bytes"]
    cache_command.run(["info", "--cache-dir", str(cache)])
    text = capsys.readouterr().out
    assert "1 identities, 10 entries" in text and text.rstrip().endswith(f"in {cache}")
    for kind in ("embeddings", "memo", "in_memory", "perturbed", "generated", "umap", "locks", "other"):
        assert any(line.split()[0] == kind for line in text.splitlines() if line.strip()), kind
    cache_command.run(["gc", "--keep", str(emb.root), "--cache-dir", str(cache)])  # kept: its in-memory folder stays
    assert emb.root.is_dir() and not (cache / "perturbed" / "photos-blur-2-abc").exists()
    capsys.readouterr()
    other = tmp_path / "kept"
    write_crops(other, 2, seed=9, size=32)
    cache_command.run(["gc", "--keep", str(other), "--cache-dir", str(cache)])
    assert "drop the derived dataset" in capsys.readouterr().out and not emb.root.exists()


def test_cache_info_of_an_empty_or_missing_cache(tmp_path, capsys):
    cache_command.run(["info", "--cache-dir", str(tmp_path / "none")])
    assert capsys.readouterr().out.strip() == f"no embedding store in {tmp_path / 'none'}"
    cache_command.run(["info", "--json", "--cache-dir", str(tmp_path / "none")])
    assert json.loads(capsys.readouterr().out)["total"] == {"files": 0, "bytes": 0}


def test_the_module_docstring_example_runs():
    import doctest

    result = doctest.testmod(in_memory)
    assert result.attempted > 0 and result.failed == 0
