"""Property-based fuzzing (Hypothesis) of everything dsim reads from a user: the config surface, image files,
and the files it reads back (statistics ``.npz``, embedding ``.npz``, store shards, memoised statistics).

The only outcomes allowed are a correct result or exactly one ``dsim: error:`` line (in Python: a
:class:`~dsim.errors.DsimError`) — never a traceback, a hang, unbounded memory or a silently wrong number.
"Correct" is checked where it is known: a lossless image decodes to its pixels; a file that was changed is
refused or (a store row, a memo) recomputed, and whatever is returned equals what dsim wrote.

Two profiles: the default runs a few dozen examples per property (the fast tier); the tests marked ``slow``
run the long profile (``DSIM_FUZZ_EXAMPLES`` examples each, 300 by default), in CI too. Both draw the same
examples on every run; ``DSIM_FUZZ_RANDOM=1`` draws new ones (run it before a release; a failure it finds
is kept in ``.hypothesis/`` and replayed, then belongs in the fixed examples below).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from dsim import configs
from dsim.errors import DsimError, ImageReadError
from dsim.data.images import bounded_aspect, load_rgb
from dsim_testing import CHOICE_SETS, CliWorker, config_leaves, write_crops

#: the examples are the same on every run (a hash of each test seeds them), so CI cannot turn red on a draw;
#: DSIM_FUZZ_RANDOM=1 explores new ones (and keeps failures in .hypothesis/ to replay)
EXPLORE = os.environ.get("DSIM_FUZZ_RANDOM") == "1"
FAST = settings(max_examples=40, deadline=None, derandomize=not EXPLORE,
                database=settings.default.database if EXPLORE else None,
                phases=list(Phase) if EXPLORE else [Phase.explicit, Phase.generate],  # fixed examples: no shrinking
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LONG = settings(FAST, max_examples=int(os.environ.get("DSIM_FUZZ_EXAMPLES", "300")))


def one_line(error: BaseException) -> None:
    """A user-facing error: a DsimError whose message is one line."""
    assert isinstance(error, DsimError), repr(error)
    assert "\n" not in str(error).strip(), str(error)


# ---------------------------------------------------------------------------------------------------
# image files: generated images in every mode and format, then damaged bytes

MODES = ("1", "L", "P", "RGB", "RGBA", "LA", "PA", "I;16", "I", "F", "CMYK", "YCbCr", "LAB", "HSV")
FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF")
LOSSLESS = {"PNG", "BMP", "TIFF"}


@st.composite
def images(draw):
    """(PIL image, its pixels, format): a random mode, size (extreme aspect ratios included) and format."""
    mode = draw(st.sampled_from(MODES))
    if draw(st.booleans()):
        width, height = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    else:  # a strip: thin and long
        width, height = draw(st.sampled_from([(1, 3000), (3000, 1), (2, 999), (700, 3)]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    base = Image.fromarray(rgb)
    if mode in ("I;16", "I", "F"):  # wide grayscale: 16-bit, 32-bit integer, float
        wide = rng.integers(0, 65536, size=(height, width))
        image = Image.fromarray({"I;16": wide.astype(np.uint16), "I": wide.astype(np.int32),
                                 "F": (wide / 65535).astype(np.float32)}[mode])
    else:
        image = base.convert(mode) if mode != "PA" else base.convert("P").convert("PA")
    return image, draw(st.sampled_from(FORMATS))


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError, TypeError):
        assume(False)  # this format cannot hold this mode: not an input users can have
    return buffer.getvalue()


def decoded_or_refused(path: Path) -> np.ndarray | None:
    """``load_rgb`` of ``path``: an H×W×3 uint8 array, or None after a one-line :class:`ImageReadError`."""
    try:
        rgb = load_rgb(path)
    except ImageReadError as error:
        one_line(error)
        return None
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.flags["C_CONTIGUOUS"]
    return rgb


def preprocessed(rgb: np.ndarray):
    """What the embedding path makes of a decoded image (EfficientNet-Lite0's preprocessing)."""
    from dsim.extractors.efficientnet import EfficientNetLite0

    tensor = EfficientNetLite0.preprocess(bounded_aspect(rgb))
    assert tuple(tensor.shape) == (3, 224, 224) and bool(tensor.isfinite().all())
    return tensor


def check_image(tmp_path: Path, image: Image.Image, fmt: str) -> None:
    data = encoded(image, fmt)
    path = tmp_path / f"image.{fmt.lower()}"
    path.write_bytes(data)
    rgb = decoded_or_refused(path)
    assert rgb is not None, f"a valid {image.mode} {fmt} {image.size} was refused"
    assert rgb.shape[:2] == (image.size[1], image.size[0])
    if fmt in LOSSLESS and image.mode in ("RGB", "L"):
        np.testing.assert_array_equal(rgb, np.asarray(image.convert("RGB")))
    preprocessed(rgb)


def check_damaged(tmp_path: Path, data: bytes, cut: int, flips: list[tuple[int, int]]) -> None:
    damaged = bytearray(data[:max(1, cut)])
    for where, value in flips:
        damaged[where % len(damaged)] = value
    path = tmp_path / "damaged.img"
    path.write_bytes(bytes(damaged))
    rgb = decoded_or_refused(path)
    if rgb is not None:
        assert rgb.size <= 64 * 1024 * 1024  # the decompression-bomb limit holds
        preprocessed(rgb)


@FAST
@given(images())
def test_any_generated_image_decodes_to_its_pixels(tmp_path, generated):
    check_image(tmp_path, *generated)


@FAST
@given(images(), st.integers(0, 4096), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6))
def test_damaged_image_bytes_decode_or_are_one_line(tmp_path, generated, cut, flips):
    image, fmt = generated
    check_damaged(tmp_path, encoded(image, fmt), cut, flips)


@FAST
@given(st.binary(min_size=0, max_size=2048), st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM",
                                                              b"II*\x00", b"RIFF\x00\x00\x00\x00WEBP", b"GIF89a"]))
def test_random_bytes_behind_any_header_are_one_line(tmp_path, tail, header):
    path = tmp_path / "random.png"
    path.write_bytes(header + tail)
    decoded_or_refused(path)


def test_a_header_claiming_ten_billion_pixels_is_refused_at_once(tmp_path):
    """A PNG whose header says 100000×100000 (a decompression bomb): refused, never allocated."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
                     + chunk(b"IEND", b""))
    with pytest.raises(ImageReadError, match="bomb|exceeds|pixels") as caught:
        load_rgb(path)
    one_line(caught.value)


@pytest.mark.slow
@LONG
@given(images(), st.integers(0, 4096), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6))
def test_long_profile_images(tmp_path, generated, cut, flips):
    check_image(tmp_path, *generated)
    image, fmt = generated
    check_damaged(tmp_path, encoded(image, fmt), cut, flips)


# ---------------------------------------------------------------------------------------------------
# files dsim reads back: statistics files, embedding files, store shards, memoised statistics

#: a change to an .npz file: drop an entry, replace one by another array, damage or cut the bytes
mutations = st.one_of(
    st.tuples(st.just("drop"), st.integers(0, 20)),
    st.tuples(st.just("replace"), st.integers(0, 20), st.sampled_from(["scalar", "object", "text", "nan", "wide",
                                                                        "float32", "int", "empty", "nudge"])),
    st.tuples(st.just("bytes"), st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), min_size=1,
                                         max_size=4)),
    st.tuples(st.just("cut"), st.floats(0, 1)),
)


def mutated_npz(path: Path, mutation, target: Path) -> bool:
    """Write ``path`` changed by ``mutation`` to ``target``; False when the change changed nothing."""
    data = path.read_bytes()
    kind = mutation[0]
    if kind == "bytes":
        damaged = bytearray(data)
        for where, value in mutation[1]:
            damaged[where % len(damaged)] = value
        target.write_bytes(bytes(damaged))
        return bytes(damaged) != data
    if kind == "cut":
        target.write_bytes(data[:int(len(data) * mutation[1])])
        return int(len(data) * mutation[1]) < len(data)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    name = sorted(arrays)[mutation[1] % len(arrays)]
    if kind == "drop":
        del arrays[name]
    else:
        old = arrays[name]
        arrays[name] = {
            "scalar": lambda: np.float64(3.0), "object": lambda: np.array([{"a": 1}], dtype=object),
            "text": lambda: np.array("not a number"), "nan": lambda: np.full(np.shape(old), np.nan),
            "wide": lambda: np.zeros((3, 7, 2)), "float32": lambda: np.asarray(old).astype(np.float32)
            if np.asarray(old).dtype.kind in "fi" else np.float32(1), "int": lambda: np.int64(2),
            "empty": lambda: np.zeros((0,)), "nudge": lambda: _nudged(old)}[mutation[2]]()
    buffer = io.BytesIO()
    _savez(buffer, arrays)
    target.write_bytes(buffer.getvalue())
    return True


def _savez(buffer, arrays: dict) -> None:
    """``np.savez``, object arrays included (a pickle inside: what dsim must never unpickle)."""
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=True)
            archive.writestr(f"{name}.npy", member.getvalue())


def _nudged(value):
    array = np.array(value, copy=True)
    if array.dtype.kind == "f" and array.size:
        array.flat[0] = np.nextafter(array.flat[0], np.inf)
    elif array.dtype.kind in "iu" and array.size:
        array.flat[0] += 1
    elif array.dtype.kind == "U":
        text = str(array)
        array = np.array(text.replace("a", "b", 1) if "a" in text else text + " ")
    return array


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict:
    """A statistics file, an embedding file, and the embeddings behind them (pixels, 40 crops)."""
    import dsim
    from dsim.embeddings.npz import save_npz
    from dsim.embeddings.stats_files import memoised_stats, save_stats

    root = tmp_path_factory.mktemp("fuzz_files")
    write_crops(root / "set", 40, seed=31, size=32)
    embeddings = dsim.embed(root / "set", extractor="pixels", cache_dir=root / "cache", progress=False, device="cpu")
    stats = memoised_stats(embeddings)
    from dsim.extractors import build

    save_stats(root / "stats.npz", stats, extractor=build("pixels"), fingerprint=embeddings.fingerprint,
               root=embeddings.root)
    save_npz(embeddings, root / "embedded.npz")
    return {"root": root, "embeddings": embeddings, "stats": stats, "features": embeddings.features.copy()}


def check_stats_file(written: dict, mutation, target: Path) -> None:
    from dsim.embeddings.stats_files import load_stats

    changed = mutated_npz(written["root"] / "stats.npz", mutation, target)
    try:
        loaded = load_stats(target)
    except DsimError as error:
        one_line(error)
        return
    assert not changed or mutation[0] == "bytes", f"a changed statistics file was read: {mutation}"
    np.testing.assert_array_equal(loaded.stats.mean, written["stats"].mean)
    np.testing.assert_array_equal(loaded.stats.scatter, written["stats"].scatter)
    assert loaded.stats.n == written["stats"].n


def check_embedding_file(written: dict, mutation, target: Path, cache: Path) -> None:
    from dsim.embeddings.npz import check_npz

    mutated_npz(written["root"] / "embedded.npz", mutation, target)
    try:
        found = check_npz(target, cache)
    except DsimError as error:
        one_line(error)
        return
    # accepted: then the features fit their identity, and are the ones dsim wrote, or an edit of a row
    # (the file carries no row checksums: an accepted edit must still be finite and of the claimed width)
    assert found.features.shape[1] == written["features"].shape[1] == found.describe["dim"]
    assert np.isfinite(found.features).all() and len(found.hashes) == len(found.features)


@FAST
@given(mutations)
def test_a_changed_statistics_file_is_refused_never_read(tmp_path, written, mutation):
    check_stats_file(written, mutation, tmp_path / "stats.npz")


@FAST
@given(mutations)
def test_a_changed_embedding_file_is_refused_or_still_fits_its_identity(tmp_path, written, mutation):
    check_embedding_file(written, mutation, tmp_path / "embedded.npz", tmp_path / "cache")


@st.composite
def shard_damage(draw):
    """Byte changes in a store's files: which file (``vec``, ``sums``, ``keys``), where, and a cut or junk tail."""
    edits = draw(st.lists(st.tuples(st.sampled_from(["vec", "sums", "keys"]), st.integers(0, 10**6),
                                    st.integers(0, 255)), max_size=5))
    tail = draw(st.sampled_from([None, "cut", "junk"]))
    return edits, tail, draw(st.sampled_from(["vec", "sums", "keys"]))


def check_store(tmp_path: Path, damage) -> None:
    """A store of 64 rows, damaged: every row read back is the row written, or the read is one line."""
    from dsim.embeddings.store import VectorStore

    rng = np.random.default_rng(5)
    hashes = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(64)]
    vectors = rng.normal(size=(64, 12)).astype(np.float32)
    with VectorStore(tmp_path, "t", "ab" * 32, 12) as store:
        store.append(hashes, vectors)
    (keys,) = tmp_path.rglob("*.keys")
    edits, tail, tail_file = damage
    for which, where, value in edits:
        path = keys.with_suffix(f".{which}")
        data = bytearray(path.read_bytes())
        data[where % len(data)] = value
        path.write_bytes(bytes(data))
    if tail:
        path = keys.with_suffix(f".{tail_file}")
        data = path.read_bytes()
        path.write_bytes(data[:-7] if tail == "cut" else data + b"\x17" * 11)
    for i, content_hash in enumerate(hashes):
        try:
            row = VectorStore(tmp_path, "t", "ab" * 32, 12).gather([content_hash])[0]
        except DsimError as error:
            one_line(error)
            continue
        np.testing.assert_array_equal(row, vectors[i])


@FAST
@given(shard_damage())
def test_a_damaged_store_returns_only_rows_it_wrote(tmp_path_factory, damage):
    check_store(tmp_path_factory.mktemp("store"), damage)


def check_memo(written: dict, mutation, cache: Path) -> None:
    """The FID memo of a dataset, changed: the statistics returned are always the right ones."""
    import warnings

    from dsim.embeddings.stats_files import memoised_stats

    embeddings = written["embeddings"]
    (memo,) = embeddings.store.memo_dir.glob("fid-stats-*.npz")
    original = memo.read_bytes()
    try:
        mutated_npz(memo, mutation, memo)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats = memoised_stats(embeddings)
        np.testing.assert_array_equal(stats.mean, written["stats"].mean)
        np.testing.assert_array_equal(stats.scatter, written["stats"].scatter)
    finally:
        memo.write_bytes(original)


@FAST
@given(mutations)
def test_a_changed_fid_memo_never_changes_the_statistics(written, mutation):
    check_memo(written, mutation, written["root"] / "cache")


@pytest.mark.slow
@LONG
@given(mutations, shard_damage())
def test_long_profile_files(tmp_path_factory, written, mutation, damage):
    tmp = tmp_path_factory.mktemp("long")
    check_stats_file(written, mutation, tmp / "stats.npz")
    check_embedding_file(written, mutation, tmp / "embedded.npz", tmp / "cache")
    check_memo(written, mutation, written["root"] / "cache")
    check_store(tmp / "store", damage)


# ---------------------------------------------------------------------------------------------------
# the config surface: every key of the shipped groups with generated values, through the dsim command

#: keys whose generated values are kept inside the test folder or small (the fuzz must not write elsewhere,
#: start a thousand decode workers, ask for a million samples, or make pixel features of 12288 dimensions whose
#: covariances take minutes to factor: it checks what dsim accepts, not how fast it is at any size)
PATH_KEYS = {"cache_dir", "tracking.store_dir", "results_file", "tracking.uri", "pair.reference", "pair.candidate",
             "dataset.root", "task.dataset", "analysis.distance.score_file", "analysis.transfer.scores",
             "extractor.weights", "pairing.weights", "generator.checkpoint", "task.train", "task.train_masks",
             "task.pool", "task.pool_masks"}
BOUNDED = {"num_workers": 4, "batch_size": 64, "generator.n_samples": 64, "generator.batch_size": 64,
           "metric.bootstrap": 4, "extractor.size": 16, "task.shards": 8, "task.shard": 8,
           "analysis.transfer.bootstrap": 8, "analysis.transfer.permutations": 8,
           "analysis.umap.max_thumbnails": 64, "task.seeds": 2, "task.bootstrap": 8,
           "metric.params.subsets": 20, "metric.params.subset_size": 64, "metric.params.max_samples": 64,
           "metric.params.n_samples": 32, "metric.params.batch_size": 16, "metric.params.splits": 8}
SKIPPED = {"hydra", "metric.name", "tracking.retry_s", "extractor._target_", "generator._target_"}


def _keys() -> list[tuple[str, object, str]]:
    """(key, default, metric) of every key of the shipped groups, once per metric for its params."""
    found, seen = [], set()
    for choices in CHOICE_SETS:
        for path, default in config_leaves(configs.defaults(choices)):
            if path.split(".")[0] in SKIPPED or path in SKIPPED or path.startswith("dataset.catalog."):
                continue
            key = (path, choices["metric"] if path.startswith("metric.params.") else "")
            if key not in seen:
                seen.add(key)
                found.append((path, default, choices["metric"]))
    return found


KEYS = _keys()
#: task=transfer_study's own keys, and the small study they are tried on (the 6-image sets, their images as masks)
STUDY_KEYS = {path for path, _ in config_leaves(configs.defaults({**CHOICE_SETS[0], "task": "transfer_study"}))
              if path.startswith("task.")} - {"task.name"}
SMALL_STUDY = ["task=transfer_study", "task.train=ref", "task.train_masks=ref", "task.pool=cand",
               "task.pool_masks=cand", "task.q=[1]", "task.seeds=1", "task.strategies=[random]", "task.bootstrap=0"]
JUNK = st.sampled_from(["abc", "''", "null", "[]", "[1,2]", "{}", "-1", "0", "1e400", "nan", "inf", "'${oc.env:NOPE}'",
                        "'${nope}'", "'a b'", "a b", "'\\x00'", "'ü'", "'\\\\'", "true", "1.5", "999999999999"])


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def value_for(path: str, default) -> st.SearchStrategy[str]:
    """Override values for ``path``: plausible ones of the default's type (or its choices), and junk."""
    if path in PATH_KEYS:
        return st.sampled_from(["ref", "cand", "missing/folder", "''", "'with space'", "ref/000.png"])
    rule = configs.rule_of(path, default)
    if rule.choices:
        return st.one_of(st.sampled_from(list(rule.choices)), JUNK)
    kind = rule.kind
    if path == "device":
        plausible = st.sampled_from(["cpu", "auto", "cuda", "cuda:1"])
    elif kind is bool:
        plausible = st.sampled_from(["true", "false"])
    elif kind is int:
        plausible = st.integers(-2, BOUNDED.get(path, 64)).map(str)
    elif kind is float:
        plausible = st.floats(-2, 200, allow_nan=False).map(lambda v: f"{v:.4g}")
    elif kind is str:
        plausible = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12).map(_quoted)
    elif kind is list:
        plausible = st.sampled_from(["[]", "[ref]", "[2]", "[2,3]", "[cand,ref]"])
    else:
        plausible = JUNK
    return st.one_of(plausible, JUNK)


@st.composite
def override_sets(draw):
    """One to three generated ``key=value`` overrides of one choice set, with the group choices they need."""
    metric = draw(st.sampled_from(sorted({m for _, _, m in KEYS})))
    candidates = [(p, d) for p, d, m in KEYS if not p.startswith("metric.params.") or m == metric]
    picked = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=3, unique_by=lambda kv: kv[0]))
    overrides = [f"metric={metric}"]
    if any(p.startswith("pairing.") for p, _ in picked) and metric not in ("psnr", "ms_ssim"):
        overrides = ["metric=psnr"]
        picked = [(p, d) for p, d in picked if not p.startswith("metric.params.")]
    groups = {p.split(".")[0] for p, _ in picked}
    if "perturb" in groups:
        overrides.append(f"perturb={draw(st.sampled_from(['blur', 'noise', 'jpeg', 'brightness', 'crop']))}")
    if "generator" in groups:  # 12 small samples (the default 1000 through DreamSim take minutes on a CPU)
        overrides += ["generator=toy", "pair.candidate=generator", "generator.n_samples=12",
                      "generator.params.resolution=32"]
    if any(p in STUDY_KEYS for p, _ in picked):
        overrides += SMALL_STUDY
    elif "task" in groups:
        overrides += ["task=embed", "task.dataset=ref"]
    if "analysis" in groups:
        transfer = any(p.startswith("analysis.transfer.") for p, _ in picked)
        overrides.append("analysis=[umap,distance,transfer]" if transfer else "analysis=umap_distance")
    assume(picked)
    for path, default in picked:
        overrides = [o for o in overrides if not o.startswith(f"{path}=")]
        overrides.append(f"{path}={draw(value_for(path, default))}")
    return overrides


class Worker(CliWorker):
    """A dsim process over a folder of two 6-image sets; each case gets its own job folder."""

    def __init__(self, folder: Path):
        for side, seed in (("ref", 41), ("cand", 42)):
            write_crops(folder / side, 6, seed, size=32)
        super().__init__(folder, ["extractor=pixels", "pair.reference=ref", "pair.candidate=cand", "progress=false",
                                  "device=cpu", f"cache_dir={folder / 'cache'}", f"tracking.store_dir={folder / 'mlruns'}",
                                  "dataset.root=.", "tracking.retry_s=5"], env={"DSIM_OFFLINE": "1"})
        self.n = 0

    def run(self, overrides: list[str]) -> dict:
        self.n += 1
        return {**super().run([*overrides, f"hydra.run.dir=jobs/{self.n}"]), "job": self.folder / "jobs" / str(self.n)}


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    worker = Worker(tmp_path_factory.mktemp("fuzz_config"))
    yield worker
    worker.close()


def check_overrides(worker: Worker, overrides: list[str]) -> None:
    done = worker.run(overrides)
    errors = [line for line in done["stderr"].splitlines() if line.startswith("dsim: error:")]
    shown = f"dsim {' '.join(overrides)} → exit {done['code']}:\n{done['stderr']}"
    assert "Traceback" not in done["stderr"] and done["code"] != "exception", shown
    if done["code"] == 0:
        assert not errors, shown
        record = done["job"] / "result.json"
        if record.exists():  # a cell (task=embed writes its shard summary instead)
            values = json.loads(record.read_text())["values"]
            # a statistic that is undefined on these data (a correlation of a constant column) is null
            assert values and all(v is None or isinstance(v, (int, float)) for v in values.values()), shown
            assert all(isinstance(v, (int, float)) for k, v in values.items() if "." not in k), shown
    else:
        assert done["code"] == 2 and len(errors) == 1, shown


def test_the_generated_keys_cover_every_key_of_the_shipped_groups():
    covered = {path for path, _, _ in KEYS}
    for choices in CHOICE_SETS:
        for path, _ in config_leaves(configs.defaults(choices)):
            assert path in covered or path.split(".")[0] in SKIPPED or path in SKIPPED \
                or path.startswith("dataset.catalog."), path
    assert len(covered) > 60


@settings(FAST, max_examples=25)
@given(override_sets())
# found by random runs: latents or a sample count that do not fit in memory; a latent size the model does not take
@example(overrides=["metric=cmmd", "generator=toy", "pair.candidate=generator", "generator.z_dim=999999999999"])
@example(overrides=["metric=cmmd", "generator=toy", "pair.candidate=generator", "generator.n_samples=999999999999"])
@example(overrides=["metric=kid_poly", "generator=toy", "pair.candidate=generator", "generator.z_dim=63"])
# ... and FD∞ with a bootstrap over 2523-d pixel features: two eigen-decompositions per point became one
@pytest.mark.slow
@example(overrides=["metric=fd_inf", "metric.bootstrap=3", "extractor.size=16"])
# a small transfer study that runs (the 6-image sets, their images as masks), and one whose q leaves no pool
@example(overrides=[*SMALL_STUDY, "task.strategies=[kcenter,random]", "task.bootstrap=8"])
@example(overrides=[*SMALL_STUDY, "task.q=[5]"])
def test_generated_config_values_run_or_are_one_line(worker, overrides):
    check_overrides(worker, overrides)


@pytest.mark.slow
@settings(LONG, max_examples=max(50, LONG.max_examples // 3))
@given(override_sets())
def test_long_profile_config_values(worker, overrides):
    check_overrides(worker, overrides)
