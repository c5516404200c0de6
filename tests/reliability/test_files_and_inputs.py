"""Reliability of dsim on awkward files and bad inputs.

What is covered, each case through the public functions and (marked ``slow``) the ``dsim`` command:

- symlink loops in a dataset folder: each image counted once, the same numbers as without the link, no hang;
- file names that are not valid UTF-8: escaped ids (``caf\\xe9.png``) that still open the real file;
- a full disk under the cache, the job folder or the MLflow store: one ``dsim: error:`` line naming the
  file (or, for the store, a kept record), and no half-written ``*.tmp`` files;
- planted (code-running) pickles and corrupt weight files: refused with one line, the code never runs;
- bad values and typos on the command line: one line naming the key;
- broken embedding files for ``dsim cache import``: one line, nothing imported;
- a missing candidate folder: reported before anything is embedded;
- a score file whose rows partly match no image: a warning that counts them.

A *one-line error* is exit status 2, exactly one stderr line starting with ``dsim: error:`` and no
``Traceback`` anywhere in stderr.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import pickle
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import dsim
from dsim.errors import DsimError
from dsim.extractors import build as build_extractor
from dsim.data.images import display_name, image_path, list_images, load_rgb
from dsim_testing import run_dsim, stored_vectors, tracking_uri, write_crops

CAFE = b"caf\xe9.png"  # Latin-1 "café.png": not valid UTF-8
CAFE_ID = r"caf\xe9.png"  # its id in dsim's records


# ---------------------------------------------------------------------------------------------------
# shared fixtures and helpers


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    """Two 40-image crop sets (``ref``, ``cand``) and a 6-image one (``tiny``), shared read-only."""
    root = tmp_path_factory.mktemp("reliability_sets")
    write_crops(root / "ref", 40, seed=11)
    write_crops(root / "cand", 40, seed=12)
    write_crops(root / "tiny", 6, seed=13)
    return {"ref": root / "ref", "cand": root / "cand", "tiny": root / "tiny"}


def cell_args(tmp: Path, *extra: str) -> list[str]:
    """A pixels cell on the CPU, its cache, MLflow store and job folder under ``tmp``."""
    return ["extractor=pixels", "progress=false", "device=cpu", f"cache_dir={tmp / 'cache'}",
            f"tracking.uri={tracking_uri(tmp)}", f"hydra.run.dir={tmp / 'job'}", *extra]


def one_line_error(done: subprocess.CompletedProcess) -> str:
    """The single ``dsim: error:`` line of a failed command (asserting exit 2, one line, no traceback)."""
    errors = [line for line in done.stderr.splitlines() if line.startswith("dsim: error:")]
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert len(errors) == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return errors[0]


def succeeded(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr, done.stderr


def cache_entries(cache_dir: Path) -> int:
    """How many vectors the embedding store in a cache folder holds (0 when it does not exist)."""
    return stored_vectors(cache_dir)


def files_under(root: Path) -> list[Path]:
    """Every file under ``root``, hidden ones included."""
    return [Path(d) / name for d, _, names in os.walk(root) for name in names]


def copy_images(source: Path, target: Path, n: int) -> list[str]:
    target.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in source.glob("*.png"))[:n]
    for name in names:
        shutil.copy2(source / name, target / name)
    return names


# ---------------------------------------------------------------------------------------------------
# 1. symlink loops


@pytest.fixture()
def looped(tmp_path, sets) -> dict[str, Path]:
    """``self``: 5 images and ``self -> .``; ``plain``: the same 5 images, no link; ``double``: 3 images at the
    top, 2 in ``a/``, with ``a/up -> ..`` and ``a/again -> ../a``."""
    self_loop, plain, double = tmp_path / "self_loop", tmp_path / "plain", tmp_path / "double"
    copy_images(sets["tiny"], self_loop, 5)
    copy_images(sets["tiny"], plain, 5)
    (self_loop / "self").symlink_to(".")
    names = copy_images(sets["tiny"], double, 3)
    (double / "a").mkdir()
    for name in sorted(p.name for p in sets["tiny"].glob("*.png"))[3:5]:
        shutil.copy2(sets["tiny"] / name, double / "a" / f"deep_{name}")
    (double / "a" / "up").symlink_to("..")
    (double / "a" / "again").symlink_to("../a")
    return {"self": self_loop, "plain": plain, "double": double, "top": names}


def test_list_images_visits_each_real_folder_once(looped):
    """``list_images`` through ``self -> .`` and ``a/up -> ..`` / ``a/again -> ../a``: each image once."""
    self_ids = [ref.relpath for ref in list_images(looped["self"])]
    assert self_ids == [ref.relpath for ref in list_images(looped["plain"])]
    assert len(self_ids) == 5 and not any(rel.startswith("self/") for rel in self_ids)

    double = list_images(looped["double"])
    assert len(double) == 5
    assert len({ref.path.resolve() for ref in double}) == 5  # no file reached twice under two names
    assert sorted(ref.relpath for ref in double if "/" not in ref.relpath) == looped["top"]
    assert all(ref.relpath.startswith("a/deep_") for ref in double if "/" in ref.relpath)


@pytest.mark.slow
def test_self_loop_cell_counts_five_and_matches_the_plain_folder(tmp_path, looped, sets):
    """A sweep over the looped and the plain folder: both cells count 5 images, same fingerprint, same FID."""
    done = run_dsim("-m", *[a for a in cell_args(tmp_path) if not a.startswith("hydra.run.dir")],
                    f"hydra.sweep.dir={tmp_path / 'sweep'}", "metric=fid",
                    f"pair.reference={looped['self']},{looped['plain']}", f"pair.candidate={sets['cand']}",
                    cwd=tmp_path, check=False, timeout=300)
    succeeded(done)
    loop, plain = (json.loads((tmp_path / "sweep" / str(job) / "result.json").read_text()) for job in (0, 1))
    assert loop["reference"] == str(looped["self"]) and plain["reference"] == str(looped["plain"])
    assert loop["n_reference"] == plain["n_reference"] == 5
    assert loop["reference_fingerprint"] == plain["reference_fingerprint"]
    assert loop["values"]["fid"] == pytest.approx(plain["values"]["fid"], rel=1e-9)


@pytest.mark.slow
def test_two_symlink_loops_do_not_hang_the_cell(tmp_path, looped, sets):
    """``a/up -> ..`` and ``a/again -> ../a``: the cell finishes (well within a timeout), 5 images counted."""
    done = run_dsim(*cell_args(tmp_path, "metric=fid", f"pair.reference={looped['double']}",
                               f"pair.candidate={sets['cand']}"), cwd=tmp_path, check=False, timeout=180)
    succeeded(done)
    record = json.loads((tmp_path / "job" / "result.json").read_text())
    assert record["n_reference"] == 5 and record["n_candidate"] == 40
    manifest = pd.read_csv(tmp_path / "job" / "artifacts" / "manifest_reference.csv")
    assert len(manifest) == 5 and manifest["relpath"].is_unique


# ---------------------------------------------------------------------------------------------------
# 2. file names that are not valid UTF-8


def write_cafe(folder: Path, source: Path) -> Path:
    """Copy the PNG ``source`` into ``folder`` under the non-UTF-8 name ``caf\\xe9.png``; return its path."""
    with open(os.fsencode(folder) + b"/" + CAFE, "wb") as handle:
        handle.write(source.read_bytes())
    return Path(os.fsdecode(os.fsencode(folder) + b"/" + CAFE))


@pytest.fixture()
def cafe_sets(tmp_path, sets) -> dict[str, Path]:
    """``ref`` and ``cand``: 11 crops each with the same names, plus ``caf\\xe9.png`` in both (other pixels)."""
    out = {}
    for side, source in (("ref", sets["ref"]), ("cand", sets["cand"])):
        folder = tmp_path / side
        copy_images(source, folder, 11)
        write_cafe(folder, sorted(source.glob("*.png"))[20])
        out[side] = folder
    return out


def test_list_images_escapes_non_utf8_names_and_maps_them_back(tmp_path, sets):
    """The id of ``caf\\xe9.png`` is the escaped text; ``image_path`` opens the real file from it."""
    source = sorted(sets["ref"].glob("*.png"))[0]
    real = write_cafe(tmp_path, source)
    shutil.copy2(sets["ref"] / "001.png", tmp_path / "plain.png")

    refs = list_images(tmp_path)
    assert [ref.relpath for ref in refs] == [CAFE_ID, "plain.png"]
    cafe = refs[0]
    assert display_name(real.name) == CAFE_ID
    cafe.relpath.encode("utf-8")  # no lone surrogates: storable in any UTF-8 table, JSON file or store

    found = image_path(tmp_path, cafe.relpath)
    assert os.fsencode(found) == os.fsencode(real) and found.read_bytes() == source.read_bytes()
    assert load_rgb(found).shape == (96, 96, 3)
    assert image_path(tmp_path, "plain.png") == tmp_path / "plain.png"


@pytest.mark.slow
@pytest.mark.parametrize("metric", [["metric=fid"], ["metric=psnr", "pairing=by_name"]], ids=["fid", "psnr_by_name"])
def test_cell_with_a_non_utf8_file_name(tmp_path, cafe_sets, metric):
    """A distribution cell and a by-name paired cell over folders holding ``caf\\xe9.png`` both succeed and
    record the escaped id in the manifest (and, paired, in the pairs table)."""
    done = run_dsim(*cell_args(tmp_path, *metric, f"pair.reference={cafe_sets['ref']}",
                               f"pair.candidate={cafe_sets['cand']}"), cwd=tmp_path, check=False)
    succeeded(done)
    record = json.loads((tmp_path / "job" / "result.json").read_text())
    assert record["n_reference"] == record["n_candidate"] == 12
    artifacts = tmp_path / "job" / "artifacts"
    for side in ("reference", "candidate"):
        manifest = (artifacts / f"manifest_{side}.csv").read_bytes().decode("utf-8")  # strict UTF-8
        ids = [line.split(",")[0] for line in manifest.strip().splitlines()[1:]]
        assert len(ids) == 12 and CAFE_ID in ids
    if "metric=psnr" in metric:
        pairs = pd.read_csv(artifacts / "pairs.csv")
        assert record["values"]["n_pairs"] == 12
        row = pairs[pairs["candidate"] == CAFE_ID]
        assert len(row) == 1 and row["reference"].iloc[0] == CAFE_ID


# ---------------------------------------------------------------------------------------------------
# 3. a full disk


@pytest.fixture()
def tmpfs(tmp_path):
    """A 256 KiB tmpfs mounted for the test (skipped where mounting is not permitted); always unmounted."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def fill(mount_point: Path, *, leave: int = 0) -> None:
    """Fill the file system of ``mount_point`` with a filler file, leaving about ``leave`` bytes free."""
    reserve = mount_point / "reserve.bin"
    if leave:
        reserve.write_bytes(b"\0" * leave)
    fd = os.open(mount_point / "filler.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        chunk = b"\0" * 4096
        while True:
            try:
                if os.write(fd, chunk) == 0:
                    break
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                break
    finally:
        os.close(fd)
    if leave:
        reserve.unlink()
    assert shutil.disk_usage(mount_point).free <= leave + 4096


def tmp_leftovers(root: Path) -> list[Path]:
    return [p for p in files_under(root) if p.name.endswith(".tmp")]


def fid_cell_with(tmp_path: Path, sets, key: str, value) -> list[str]:
    """A ref-vs-cand FID cell whose ``key`` (``cache_dir``, ``hydra.run.dir``) is ``value``."""
    args = cell_args(tmp_path, "metric=fid", f"pair.reference={sets['ref']}", f"pair.candidate={sets['cand']}")
    return [a for a in args if not a.startswith(f"{key}=")] + [f"{key}={value}"]


@pytest.mark.slow
def test_full_cache_disk_is_one_line_naming_the_cache_file(tmp_path, tmpfs, sets):
    """``cache_dir`` on a full tmpfs: one line naming a file under the cache dir and ENOSPC; no ``*.tmp`` left."""
    fill(tmpfs)
    cache = tmpfs / "cache"
    done = run_dsim(*fid_cell_with(tmp_path, sets, "cache_dir", cache), cwd=tmp_path, check=False)
    line = one_line_error(done)
    assert "No space left on device" in line
    assert f"while writing {cache}/" in line, line
    assert tmp_leftovers(tmpfs) == []


@pytest.mark.slow
@pytest.mark.parametrize("free", [0, 4096], ids=["full", "nearly_full"])
def test_full_job_folder_is_one_line_naming_a_job_file(tmp_path, tmpfs, sets, free):
    """The job folder on a full tmpfs (the first file fails) or a nearly full one (4 KiB free: a later file
    fails): one line naming a file under it; no ``*.tmp``, empty or torn file left."""
    fill(tmpfs, leave=free)
    job = tmpfs / "job"
    done = run_dsim(*fid_cell_with(tmp_path, sets, "hydra.run.dir", job), cwd=tmp_path, check=False)
    line = one_line_error(done)
    assert "No space left on device" in line
    assert f"while writing {job}/" in line, line
    left = files_under(job) if job.exists() else []
    assert [p for p in left if p.name.endswith(".tmp")] == []
    assert [p for p in left if p.stat().st_size == 0] == []
    for path in left:  # whatever was written is whole
        if path.suffix == ".json":
            json.loads(path.read_text())


@pytest.mark.slow
def test_full_mlflow_store_keeps_the_record_in_the_job_folder(tmp_path, tmpfs, sets):
    """The MLflow store on a full tmpfs: the cell still succeeds, warns ``not logged to MLflow`` and its job
    folder (on the normal disk) holds the result and a pending copy of the run that ``dsim sync`` can log."""
    store = tmpfs / "mlruns"
    fill(tmpfs)
    args = [a for a in cell_args(tmp_path, "metric=fid", f"pair.reference={sets['ref']}",
                                 f"pair.candidate={sets['cand']}") if not a.startswith("tracking.uri=")]
    done = run_dsim(*args, f"tracking.store_dir={store}", "tracking.retry_s=2", cwd=tmp_path, check=False)
    succeeded(done)
    assert any(line.startswith("dsim: warning: not logged to MLflow") for line in done.stderr.splitlines()), \
        done.stderr

    job = tmp_path / "job"
    record = json.loads((job / "result.json").read_text())
    assert np.isfinite(record["values"]["fid"]) and record["mlflow_run_id"] is None
    assert record["tracking"] == "pending"
    pending = json.loads((job / ".dsim_pending_run.json").read_text())
    assert len(pending["record_id"]) == 32
    assert pending["uri"] == f"sqlite:///{store.resolve() / 'mlflow.db'}"
    assert Path(pending["result_file"]) == job / "result.json"
    assert pending["metrics"]["fid"] == pytest.approx(record["values"]["fid"])
    assert tmp_leftovers(tmpfs) == []


# ---------------------------------------------------------------------------------------------------
# 4. planted pickles and corrupt weight files


class _Planted:
    """Unpickling this touches ``marker``: the code a malicious checkpoint would run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (Path(self.marker),)


def planted_checkpoint(path: Path, marker: Path, fmt: str) -> Path:
    """A checkpoint that looks like a state dict but runs code (``marker.touch()``) when unpickled."""
    payload = {"state_dict": {"weight": torch.zeros(3)}, "meta": _Planted(marker)}
    if fmt == "torch":
        torch.save(payload, path)
    else:
        with open(path, "wb") as handle:
            pickle.dump(payload, handle, protocol=2)  # what torch.save writes
    return path


def test_planted_checkpoint_really_runs_code_when_unpickled_unsafely(tmp_path):
    """The check below is meaningful: an unsafe ``torch.load`` of the planted file does create the marker."""
    for fmt in ("torch", "pickle"):
        marker = tmp_path / f"ran_{fmt}"
        path = planted_checkpoint(tmp_path / f"planted_{fmt}.pth", marker, fmt)
        if fmt == "torch":
            torch.load(path, map_location="cpu", weights_only=False)
        else:
            with open(path, "rb") as handle:
                pickle.load(handle)
        assert marker.exists()


@pytest.mark.parametrize("fmt", ["torch", "pickle"])
@pytest.mark.parametrize("extractor", ["inception", "mobilenet_v2", "efficientnet_lite0"])
def test_planted_pickle_is_refused_without_running_it(tmp_path, sets, extractor, fmt):
    """``weights=`` a planted pickle: a DsimError that the file holds Python objects; the code never ran."""
    marker = tmp_path / "MARKER"
    path = planted_checkpoint(tmp_path / "planted.pth", marker, fmt)
    with pytest.raises(DsimError, match="holds Python objects besides tensors") as info:
        dsim.embed(sets["tiny"], extractor=extractor, weights=str(path), cache_dir=tmp_path / "cache",
                   device="cpu", num_workers=0, progress=False)
    assert str(path) in str(info.value)
    assert not marker.exists()
    assert cache_entries(tmp_path / "cache") == 0


def test_truncated_checkpoint_cannot_be_read(tmp_path, sets):
    """The first 100 kB of the real efficientnet_lite0 checkpoint: ``cannot read weights file``."""
    real = build_extractor("efficientnet_lite0").resolved_weights.path
    truncated = tmp_path / "truncated.pth"
    with open(real, "rb") as handle:
        truncated.write_bytes(handle.read(100_000))
    with pytest.raises(DsimError, match="cannot read weights file") as info:
        dsim.embed(sets["tiny"], extractor="efficientnet_lite0", weights=str(truncated),
                   cache_dir=tmp_path / "cache", device="cpu", num_workers=0, progress=False)
    assert str(truncated) in str(info.value) and "\n" not in str(info.value)


def test_garbage_safetensors_file_is_refused(tmp_path, sets):
    """A ``.safetensors`` file of random bytes: a one-line DsimError naming it."""
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(DsimError, match="cannot read weights file") as info:
        dsim.embed(sets["tiny"], extractor="mobilenet_v2", weights=str(garbage), cache_dir=tmp_path / "cache",
                   device="cpu", num_workers=0, progress=False)
    assert str(garbage) in str(info.value) and "\n" not in str(info.value)


def test_checkpoint_of_another_network_is_refused(tmp_path, sets):
    """The real mobilenet_v2 checkpoint given to efficientnet_lite0: ``a checkpoint of another network``."""
    mobilenet = build_extractor("mobilenet_v2").resolved_weights.path
    with pytest.raises(DsimError, match="a checkpoint of another network") as info:
        dsim.embed(sets["tiny"], extractor="efficientnet_lite0", weights=str(mobilenet),
                   cache_dir=tmp_path / "cache", device="cpu", num_workers=0, progress=False)
    assert "\n" not in str(info.value)
    assert cache_entries(tmp_path / "cache") == 0


@pytest.mark.slow
def test_planted_inception_weights_through_the_cli(tmp_path, sets):
    """``dsim extractor=inception extractor.weights=PLANTED``: one line, and the planted code never ran."""
    marker = tmp_path / "MARKER"
    path = planted_checkpoint(tmp_path / "planted.pth", marker, "torch")
    args = [a for a in cell_args(tmp_path, "metric=fid", f"pair.reference={sets['tiny']}",
                                 f"pair.candidate={sets['tiny']}") if a != "extractor=pixels"]
    done = run_dsim("extractor=inception", f"extractor.weights={path}", *args, cwd=tmp_path, check=False)
    line = one_line_error(done)
    assert "holds Python objects besides tensors" in line and str(path) in line
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------------
# 5. bad values and typos on the command line


BAD_OVERRIDES = [
    (["batch_size=abc"], "batch_size must be an integer >= 1"),
    (["batch_size=0"], "batch_size must be an integer >= 1"),
    (["num_workers=-1"], "num_workers must be an integer >= 0"),
    (["extractor.size=0"], "extractor.size must be an integer >= 1"),
    (["dataset.on_error=ignore"], "dataset.on_error must be one of raise, skip"),
    (["tracking.retry_s=-1"], "tracking.retry_s must be a number >= 0"),
    (["metric.bootstrap=x"], "metric.bootstrap must be an integer >= 0"),
    (["pairing.k=0"], "pairing.k must be an integer >= 1"),
    (["metrc=fid"], "did you mean 'metric'"),
    (["+metrc=fid"], "unknown key 'metrc'"),
    (["extractor.sise=3"], "unknown key 'extractor.sise' (did you mean 'extractor.size'?)"),
    (["metric=kid_poly", "metric.params.subsets=abc"], "subsets must be an integer >= 1, got 'abc'"),
    (["generator=toy", "generator.params={z_dim:32,a:1}"], "unknown key 'generator.params.a' (known keys of "
     "generator.params: init_seed, resolution, w_dim, z_dim; set them as generator.params.KEY=VALUE)"),
    (["metric=fid", "metric.params.subsetz=5"], "unknown key 'metric.params.subsetz' (metric.params takes no keys "
     "with metric=fid)"),
    (["pair.reference=/data/run", "2024/photos"], "'2024/photos' is not KEY=VALUE: a value with spaces must be "
     "quoted, as one argument: 'pair.reference=\"/data/run 2024/photos\"'"),  # the shell split an unquoted path
    (["pair.reference=/data/photos (1)"], "cannot read the value of pair.reference: quote it, as one argument: "
     "'pair.reference=\"/data/photos (1)\"'"),
    (["perturb.strength=2"], "perturb.strength=2 has no effect with perturb=none"),
    (["cache_dir="], "cache_dir must be a non-empty string, got ''"),
]


@pytest.mark.slow
@pytest.mark.parametrize("overrides, expected", BAD_OVERRIDES, ids=[" ".join(o) for o, _ in BAD_OVERRIDES])
def test_bad_value_or_typo_is_one_line_naming_the_key(tmp_path, sets, overrides, expected):
    """Each bad value or unknown key ends the command with one line naming the key; nothing is computed."""
    done = run_dsim(*cell_args(tmp_path, f"pair.reference={sets['ref']}", f"pair.candidate={sets['cand']}"),
                    *overrides, cwd=tmp_path, check=False)
    line = one_line_error(done)
    assert expected in line, line
    assert not (tmp_path / "job" / "result.json").exists()
    if not any(o.startswith("metric.params.") for o in overrides):  # checked before any work
        assert cache_entries(tmp_path / "cache") == 0


# ---------------------------------------------------------------------------------------------------
# 6. dsim cache import of broken embedding files


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, sets) -> dict[str, Path]:
    """``dsim embed`` of the 40-image ``ref`` set with pixels: the ``.npz`` and the cache it filled."""
    root = tmp_path_factory.mktemp("embedded")
    out = root / "ref.npz"
    run_dsim("embed", str(sets["ref"]), "--extractor", "pixels", "--device", "cpu", "--out", str(out),
             "--cache-dir", str(root / "cache"), cwd=root)
    return {"npz": out, "cache": root / "cache"}


def fake_npz(path: Path, features: np.ndarray, *, extractor: str = "pixels", identity: str = "ab" * 32) -> Path:
    """An embedding file with the keys of ``dsim.embeddings.npz.save_npz``."""
    n = len(features)
    hashes = [f"{i:064x}" for i in range(1, n + 1)]
    np.savez(path, features=features, ids=np.array([f"{i:03d}.png" for i in range(n)]), hashes=np.array(hashes),
             fingerprint="cd" * 32, extractor=extractor, extractor_identity=identity,
             weights_checksum="none", random_weights=False)
    return path


@pytest.mark.slow
def test_truncated_embedding_file_is_one_line(tmp_path, embedded):
    """A valid ``dsim embed`` file cut to half its size: one line, nothing imported."""
    half = tmp_path / "half.npz"
    data = embedded["npz"].read_bytes()
    half.write_bytes(data[: len(data) // 2])
    cache = tmp_path / "cache"
    done = run_dsim("cache", "import", str(half), "--cache-dir", str(cache), cwd=tmp_path, check=False)
    line = one_line_error(done)
    assert str(half) in line and "truncated" in line
    assert cache_entries(cache) == 0


@pytest.mark.slow
def test_embedding_file_with_nan_imports_nothing(tmp_path):
    """An embedding file with one NaN row: one line saying NaN or inf; the cache gets no entry at all."""
    features = np.random.default_rng(0).normal(size=(6, 768)).astype(np.float32)
    features[3, 10] = np.nan
    path = fake_npz(tmp_path / "nan.npz", features)
    cache = tmp_path / "cache"
    cache.mkdir()
    done = run_dsim("cache", "import", str(path), "--cache-dir", str(cache), cwd=tmp_path, check=False)
    line = one_line_error(done)
    assert "NaN or inf" in line and "1 of 6" in line
    assert files_under(cache) == []


@pytest.mark.slow
def test_embedding_file_of_another_dimension_is_refused(tmp_path, embedded):
    """Features of another dimension than the cache holds for the same identity: one line, nothing added."""
    with np.load(embedded["npz"]) as real:
        name, identity, dim = str(real["extractor"]), str(real["extractor_identity"]), real["features"].shape[1]
    cache = tmp_path / "cache"
    shutil.copytree(embedded["cache"], cache)
    before = sorted(files_under(cache))
    path = fake_npz(tmp_path / "small.npz", np.ones((4, 10), np.float32), extractor=name, identity=identity)
    done = run_dsim("cache", "import", str(path), "--cache-dir", str(cache), cwd=tmp_path, check=False)
    line = one_line_error(done)
    assert "10-d features" in line and f"{dim}-d" in line
    assert sorted(files_under(cache)) == before


# ---------------------------------------------------------------------------------------------------
# 7. a missing candidate folder


@pytest.mark.slow
def test_missing_candidate_is_reported_before_any_embedding(tmp_path, sets):
    """``pair.candidate=<missing>``: one line naming it, and not one reference image was embedded."""
    missing = tmp_path / "no_such_folder"
    done = run_dsim(*cell_args(tmp_path, "metric=fid", f"pair.reference={sets['ref']}", f"pair.candidate={missing}"),
                    cwd=tmp_path, check=False)
    line = one_line_error(done)
    assert str(missing) in line and "does not exist" in line
    assert cache_entries(tmp_path / "cache") == 0


# ---------------------------------------------------------------------------------------------------
# 8. score files of analysis=distance


def test_score_rows_matching_no_image_are_counted_in_a_warning():
    """Scores for 3 images that exist and 2 that do not: a warning counts the 2; the 3 are joined."""
    from dsim.analysis.distance_views import with_scores

    frame = pd.DataFrame({"dataset": ["cand"] * 4, "relpath": ["a.png", "b.png", "c.png", "d.png"],
                          "i_dist": [1.0, 2.0, 3.0, 4.0]})
    scores = pd.DataFrame({"relpath": ["a.png", "b.png", "c.png", "gone.png", "sub/x.png"],
                           "score": [0.1, 0.2, 0.3, 0.4, 0.5]})
    with pytest.warns(UserWarning, match="2 of its 5 rows match no image"):
        out = with_scores(frame, scores)
    joined = dict(zip(out["relpath"], out["score"]))
    assert joined["a.png"] == 0.1 and joined["b.png"] == 0.2 and joined["c.png"] == 0.3
    assert np.isnan(joined["d.png"]) and len(out) == 4
