"""``dsim select`` and its strategies: I_dist from the train set, band / kcenter / random picks, the folders.

The numbers are checked against their definitions computed another way: I_dist against the ``odist``
metric's per-image values, each greedy pick against a brute-force search over every remaining image.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from dsim_testing import run_dsim, start_dsim, write_crops
from scipy.spatial.distance import cdist

from dsim.analysis import selection
from dsim.errors import DsimError
from dsim.metrics import odist


def _sets(seed=0, n=300, m=500, d=16):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)).astype(np.float32), (rng.normal(size=(m, d)) + 0.5).astype(np.float32))


@pytest.mark.parametrize("shape", [(300, 500, 16), (20, 30, 64)], ids=["gram", "svd"])
def test_pool_distances_are_odists_i_dist_streamed_in_chunks(monkeypatch, shape):
    train, pool = _sets(1, *shape)
    expected = odist(train, pool, n_components=5).per_image["candidate"]["i_dist"]
    monkeypatch.setattr(selection, "CHUNK", 64)  # many chunks per side
    got = selection.pool_distances(train, pool, n_components=5)
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_min_max_scaled_spans_zero_to_one():
    scaled = selection.min_max_scaled(np.array([3.0, 5.0, 4.0]))
    np.testing.assert_allclose(scaled, [0, 1, 0.5])
    assert not selection.min_max_scaled(np.ones(4)).any()


def _brute_force_greedy(points, picks, start_distance):
    """Each pick after the first must maximise the distance to its nearest earlier pick (or train image)."""
    for k in range(1, len(picks)):
        nearest = np.minimum(start_distance, cdist(points, points[picks[:k]], "sqeuclidean").min(1))
        nearest[picks[:k]] = -np.inf
        assert nearest[picks[k]] == pytest.approx(nearest.max(), rel=1e-9), k


def test_band_picks_lie_in_the_band_spread_by_farthest_point_sampling():
    train, pool = _sets(2)
    scaled = selection.min_max_scaled(selection.pool_distances(train, pool))
    picks = selection.pick_order("band", train, pool, scaled, count=7, band=(0.6, 1.0), seed=3)
    assert len(set(picks)) == 7 and ((scaled[picks] >= 0.6) & (scaled[picks] <= 1)).all()
    rows = np.flatnonzero((scaled >= 0.6) & (scaled <= 1))
    _brute_force_greedy(pool[rows], [int(np.flatnonzero(rows == p)[0]) for p in picks], np.inf)
    again = selection.pick_order("band", train, pool, scaled, count=7, band=(0.6, 1.0), seed=3)
    other = selection.pick_order("band", train, pool, scaled, count=7, band=(0.6, 1.0), seed=4)
    assert (picks == again).all() and not (picks == other).all()


def test_kcenter_is_greedy_given_the_train_set_and_finds_what_train_lacks():
    rng = np.random.default_rng(5)
    train = rng.normal(size=(400, 8)).astype(np.float32)
    pool = rng.normal(size=(300, 8)).astype(np.float32)
    missing = np.array([40, 80, 120])  # three images unlike anything in the train set, far from each other
    pool[missing] += np.array([[30, 0, 0, 0, 0, 0, 0, 0], [0, 30, 0, 0, 0, 0, 0, 0], [0, 0, 30, 0, 0, 0, 0, 0]])
    selection.DISTANCE_BLOCK, saved = 64, selection.DISTANCE_BLOCK  # blocks on both sides
    try:
        picks = selection.pick_order("kcenter", train, pool, np.zeros(len(pool)), count=10)
    finally:
        selection.DISTANCE_BLOCK = saved
    assert set(picks[:3]) == set(missing)
    _brute_force_greedy(pool.astype(np.float64), picks, cdist(pool, train, "sqeuclidean").min(1))


def test_random_is_a_seeded_permutation():
    train, pool = _sets(6)
    scaled = np.zeros(len(pool))
    first, again, other = (selection.pick_order("random", train, pool, scaled, count=7, seed=s) for s in (1, 1, 2))
    assert (first == again).all() and not (first == other).all() and len(set(first)) == 7


def test_strategies_refuse_what_they_cannot_do():
    train, pool = _sets(7, n=50, m=40)
    scaled = selection.min_max_scaled(selection.pool_distances(train, pool))
    inside = int(((scaled >= 0.99) & (scaled <= 1)).sum())
    with pytest.raises(DsimError, match=rf"band \[0.99, 1\] .* holds {inside} of 40 .*widen --band"):
        selection.pick_order("band", train, pool, scaled, count=inside + 1, band=(0.99, 1.0))
    with pytest.raises(DsimError, match="cannot choose 41 of 40"):
        selection.pick_order("random", train, pool, scaled, count=41)


# --- the command, on images --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A train set and a larger pool (each more than a batch), and a shared cache and store."""
    root = tmp_path_factory.mktemp("select")
    write_crops(root / "train", 40, seed=1, size=48)
    write_crops(root / "pool" / "near", 30, seed=2, size=48)
    rng = np.random.default_rng(3)
    far = root / "pool" / "far"
    far.mkdir(parents=True)
    for i in range(12):  # flat colour fields: far from every photo crop
        from PIL import Image

        Image.fromarray(np.full((48, 48, 3), rng.integers(0, 255, 3), dtype=np.uint8)).save(far / f"{i:02d}.png")
    return root


def _select(root: Path, out: str, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_dsim("select", "--train", "train", "--pool", "pool", "--extractor", "pixels", "--out", out,
                    "--cache-dir", "cache", "--store-dir", "mlruns", "--batch-size", "8", "--num-workers", "2",
                    "--no-progress", *extra, cwd=root, check=check)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_select_writes_the_table_the_folders_and_a_run_with_both_fingerprints(folders):
    done = _select(folders, "band", "--q", "1,3,7", "--strategy", "band", "--band", "0.3,1", "--seed", "4")
    assert "mean scaled" in done.stdout
    table = pd.read_csv(folders / "band" / "selection.csv")
    assert list(table.columns) == ["image", "sha256", "i_dist", "scaled", "in_band", "rank", "q1", "q3", "q7"]
    assert len(table) == 42 and table["scaled"].min() == 0 and table["scaled"].max() == 1
    assert 7 <= table["in_band"].sum() < 42 and table["in_band"].eq(table["scaled"].between(0.3, 1)).all()
    picked = table.dropna(subset=["rank"])
    assert list(picked["rank"]) == list(range(1, 8)) and picked["in_band"].all()
    for q in (1, 3, 7):
        chosen = table[table[f"q{q}"]]
        assert len(chosen) == q and set(chosen["rank"]) == set(range(1, q + 1))  # nested: the first q picks
        links = sorted(p for p in (folders / "band" / f"q{q}").rglob("*") if p.is_file())
        assert sorted(str(p.relative_to(folders / "band" / f"q{q}")) for p in links) == sorted(chosen["image"])
        for link in links:  # a link to the pool's file, whose content is the row's hash
            assert link.is_symlink() and link.resolve().is_relative_to((folders / "pool").resolve())
            assert _sha256(link) == table.set_index("image").loc[str(link.relative_to(folders / "band" / f"q{q}")),
                                                                 "sha256"]
    summary = json.loads((folders / "band" / "selection.json").read_text())
    assert summary["embedded"] == {"train": 40, "pool": 42} and summary["mlflow_run_id"]
    from mlflow.tracking import MlflowClient

    from dsim.tracking.mlflow_store import resolve_uri

    run = MlflowClient(resolve_uri(None, folders / "mlruns")).get_run(summary["mlflow_run_id"])
    profiles = {json.loads(i.dataset.profile)["fingerprint"] for i in run.inputs.dataset_inputs}
    assert profiles == {summary["train"]["fingerprint"], summary["pool"]["fingerprint"]}
    assert run.data.params["strategy"] == "band" and run.data.metrics["n_pool"] == 42


def test_kcenter_picks_what_a_brute_force_greedy_picks_on_the_cached_features(folders):
    import dsim

    _select(folders, "kcenter", "--strategy", "kcenter", "--q", "3")
    table = pd.read_csv(folders / "kcenter" / "selection.csv")
    train, pool = (dsim.embed(folders / side, "pixels", cache_dir=folders / "cache", progress=False)
                   for side in ("train", "pool"))
    nearest = cdist(pool.features, train.features, "sqeuclidean").min(1)
    picks = []
    for _ in range(3):
        gap = np.minimum(nearest, cdist(pool.features, pool.features[picks], "sqeuclidean").min(1)) if picks \
            else nearest.copy()
        gap[picks] = -np.inf
        picks.append(int(np.argmax(gap)))
    assert list(table[table["q3"]]["image"]) == [pool.ids[p] for p in picks]


def test_same_seed_same_selection_and_the_second_run_embeds_nothing(folders):
    _select(folders, "random-a", "--strategy", "random", "--seed", "9")
    _select(folders, "random-b", "--strategy", "random", "--seed", "9")
    _select(folders, "random-c", "--strategy", "random", "--seed", "10")
    a, b, c = ((folders / f"random-{x}" / "selection.csv").read_text() for x in "abc")
    assert a == b and a != c
    assert json.loads((folders / "random-b" / "selection.json").read_text())["embedded"] == {"train": 0, "pool": 0}


def test_a_copied_folder_is_a_dataset_dvc_tracks_like_the_linked_one(folders, tmp_path):
    _select(folders, "copies", "--strategy", "random", "--seed", "9", "--q", "3", "--copy")
    _select(folders, "links", "--strategy", "random", "--seed", "9", "--q", "3")
    assert not any(p.is_symlink() for p in (folders / "copies" / "q3").rglob("*"))
    md5s = {}
    for kind in ("copies", "links"):
        project = tmp_path / kind
        subprocess.run(["git", "init", "-q", str(project)], check=True)
        subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=project, check=True)
        shutil.copytree(folders / kind / "q3", project / "q3", symlinks=True)  # links stay links
        subprocess.run([sys.executable, "-m", "dvc", "add", "-q", "q3"], cwd=project, check=True)
        out = yaml.safe_load((project / "q3.dvc").read_text())["outs"][0]
        md5s[kind] = (out["md5"], out["nfiles"])
    assert md5s["copies"] == md5s["links"] and md5s["links"][1] == 3  # DVC stores the images, not the links


def test_two_runs_into_one_folder_at_once_leave_one_whole_selection(folders):
    procs = [start_dsim("select", "--train", "train", "--pool", "pool", "--extractor", "pixels", "--out", "same",
                        "--cache-dir", "cache", "--store-dir", "mlruns", "--strategy", "random", "--seed", str(s),
                        "--no-progress", cwd=folders) for s in (1, 2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    summary = json.loads((folders / "same" / "selection.json").read_text())
    table = pd.read_csv(folders / "same" / "selection.csv")
    for q in (1, 3, 7):  # the folders, the table and the summary are the same run's
        folder = folders / "same" / f"q{q}"
        images = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.png"))
        assert images == sorted(table[table[f"q{q}"]]["image"]) == sorted(summary["chosen"][f"q{q}"]["images"])
    assert not list((folders / "same").glob(".*.tmp")) and not list((folders / "same").glob(".*.old"))


def test_a_rerun_after_a_killed_one_replaces_its_half_written_folders(folders):
    _select(folders, "killed", "--strategy", "random", "--q", "3")
    out = folders / "killed"
    (out / ".q3.deadbeef.tmp" / "sub").mkdir(parents=True)  # what a run killed inside a folder's write leaves
    (out / ".q3.cafebabe.old").mkdir()
    (out / "q3" / "extra.png").write_bytes(b"not part of the selection")
    _select(folders, "killed", "--strategy", "random", "--q", "3", "--seed", "5")
    assert sorted(p.name for p in out.iterdir()) == [".selection.lock", "q3", "selection.csv", "selection.json",
                                                     "selection.png"]
    table = pd.read_csv(out / "selection.csv")
    assert sorted(str(p.relative_to(out / "q3")) for p in (out / "q3").rglob("*.png")) == sorted(
        table[table["q3"]]["image"])


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("--q", "0,3"), "--q must be positive integers"),
        (("--band", "0.8,0.2"), "--band must be two numbers"),
        (("--band", "0.999,1", "--q", "5"), "widen --band"),
        (("--out", "pool/sel"), "inside the pool folder"),
    ],
)
def test_bad_arguments_end_in_one_error_line(folders, extra, words):
    args = list(extra)
    out = args.pop(args.index("--out") + 1) if "--out" in args else "bad"
    if "--out" in args:
        args.remove("--out")
    done = _select(folders, out, *args, check=False)
    lines = [line for line in done.stderr.splitlines() if line.startswith("dsim: error:")]
    assert done.returncode != 0 and len(lines) == 1 and words in lines[0] and "Traceback" not in done.stderr

