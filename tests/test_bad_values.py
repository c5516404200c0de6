"""Every config key, given a bad value on the command line, ends ``dsim`` with one ``dsim: error:`` line.

The keys come from the shipped configs (every group option that adds keys), so a key added later is
covered or this test says it is not. The cases run through ``dsim.cli.app.main`` in two worker processes
(each importing torch once), each with its own stderr; a case that does not fail, fails with a traceback, or
prints more than one error line is reported.
"""

import pytest
from dsim_testing import CHOICE_SETS, CliWorker, config_leaves, write_crops

from dsim import configs
from dsim.metrics import METRICS

#: keys any value of the right type is good for (a label, a column name)
ANY_VALUE = {
    "pair.name": "a free label for the pair",
    "analysis.distance.score_column": "a column name, only read with a score file",
    "analysis.transfer.score_column": "a column name, only read with a score file",
    "tracking.experiment": "any experiment name",
    "extractor._target_": "checked with extractor.name (a class path is tried as given)",
}

#: bad values where a type is not enough: key → (value, words the error must contain)
SPECIAL = {
    "extractor.name": ("nonsense", "unknown extractor"),
    "extractor.weights": ("/nonexistent/weights.pt", "weights"),
    "extractor.layer": ("nonsense", "layer"),
    "pair.reference": ("/nonexistent/ref", "/nonexistent/ref"),
    "pair.candidate": ("/nonexistent/cand", "/nonexistent/cand"),
    "dataset.root": ("/nonexistent/root", "/nonexistent/root"),
    "device": ("tpu9", "device"),
    "cache_dir": ("/dev/null/cache", "cache_dir"),
    "tracking.store_dir": ("/dev/null/mlruns", "tracking.store_dir"),
    "tracking.uri": ("nonsense://x", "tracking.uri"),
    "results_file": ("/dev/null/results.json", "results_file"),
    "pairing.extractor": ("nonsense", "unknown extractor 'nonsense'"),
    "pairing.weights": ("/nonexistent/weights.pt", "weights"),

    "task.dataset": ("/nonexistent/ds", "/nonexistent/ds"),
    "task.train": ("/nonexistent/train", "/nonexistent/train"),
    "task.train_masks": ("/nonexistent/train_masks", "/nonexistent/train_masks"),
    "task.pool": ("/nonexistent/pool", "/nonexistent/pool"),
    "task.pool_masks": ("/nonexistent/pool_masks", "/nonexistent/pool_masks"),
    "task.far": ("[/nonexistent/far]", "/nonexistent/far"),
    "analysis.distance.score_file": ("/nonexistent/scores.csv", "scores.csv"),
    "analysis.transfer.scores": ("/nonexistent/scores.csv", "scores.csv"),
    "metric.params.labels": ("/nonexistent/labels.csv", "labels.csv"),
    "analysis.umap.datasets": ("[/nonexistent/extra]", "/nonexistent/extra"),
    "analysis.distance.candidates": ("[/nonexistent/extra]", "/nonexistent/extra"),
    "analysis.umap.dims": ("[4]", "dims"),
    "dataset.catalog.photos_a": ("/nonexistent/catalogued", "/nonexistent/catalogued"),
    "generator._target_": ("nowhere.Model", "cannot import nowhere"),
}


#: task=transfer_study's folders in the cases (the images stand in for masks: every case stops before use)
STUDY_FOLDERS = {"train": "ref", "train_masks": "ref", "pool": "cand", "pool_masks": "cand"}


def _bad_value(path: str, default, metric: str) -> tuple[str, str] | None:
    """(bad value as an override string, text the error must contain), or None for ANY_VALUE keys."""
    if path in ANY_VALUE:
        return None
    if path in SPECIAL:
        return SPECIAL[path]
    if path.startswith("dataset.catalog."):  # an entry matters when a pair names it: photos_a stands for all
        return None
    if path.startswith("metric.params."):
        param = next(p for p in (*METRICS[metric].params, *METRICS[metric].cell_params)
                     if p.name == path.rsplit(".", 1)[1])
        if param.constraint is None:
            raise AssertionError(f"{metric}: parameter {param.name} declares no constraint")
        return ("''" if isinstance(param.default, str) else "not-a-value"), f"{param.name} must be"
    rule = configs.rule_of(path, default)
    if rule.choices:
        return "nonsense", path
    kind = rule.kind
    if kind is bool:
        return "maybe", path
    if kind in (int, float):
        return "abc", path
    if kind is str:
        return "''", path
    if kind is list:
        return "abc", path
    raise AssertionError(f"no bad value known for {path} (default {default!r}): add it to SPECIAL or ANY_VALUE")


def _cases() -> list[dict]:
    cases, seen = [], set()
    for choices in CHOICE_SETS:
        config = configs.defaults(choices)
        for path, default in config_leaves(config):
            if path == "metric.name" or path.startswith("hydra"):
                continue
            key = (path, choices["metric"] if path.startswith("metric.params.") else "")
            if key in seen:
                continue
            seen.add(key)
            bad = _bad_value(path, default, choices["metric"])
            if bad is None:
                continue
            groups = [f"metric={choices['metric']}", f"task={choices['task']}"]
            if choices["analysis"]:
                groups.append(f"analysis=[{','.join(choices['analysis'])}]")
            if choices.get("perturb"):
                groups.append(f"perturb={choices['perturb']}")
            if choices.get("generator"):
                groups += [f"generator={choices['generator']}", "pair.candidate=generator"]
            if choices["task"] == "embed" and path != "task.dataset":
                groups.append("task.dataset=ref")
            if choices["task"] == "transfer_study":  # the four folders set, but the one under test
                groups += [f"task.{k}={side}" for k, side in STUDY_FOLDERS.items() if path != f"task.{k}"]
            if path.startswith("dataset.catalog."):
                groups.append(f"pair.reference={path.rsplit('.', 1)[1]}")
            if path == "dataset.root":  # the root matters for catalogue names
                groups.append("pair.reference=photos_a")
            if path.startswith("pairing."):  # pairing is read by the paired metrics
                groups[0] = "metric=psnr"
            cases.append({"id": f"{path}={bad[0]}" + (f" ({choices['metric']})" if key[1] else ""),
                          "overrides": [*groups, f"{path}={bad[0]}"], "expect": bad[1]})
    return cases


CASES = _cases()

def test_every_key_of_every_group_is_covered():
    ids = {case["id"].split("=", 1)[0] for case in CASES}
    for choices in CHOICE_SETS:
        for path, _ in config_leaves(configs.defaults(choices)):
            assert path in ids or path in ANY_VALUE or path == "metric.name" or path.startswith("dataset.catalog."), path
    assert len(CASES) > 60


@pytest.mark.slow
def test_a_bad_value_of_any_key_is_one_error_line(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    for side, seed in (("ref", 1), ("cand", 2)):
        write_crops(tmp_path / side, 6, seed, size=32)
    base = ["extractor=pixels", "pair.reference=ref", "pair.candidate=cand", "progress=false", "device=cpu",
            f"cache_dir={tmp_path / 'cache'}", f"tracking.store_dir={tmp_path / 'mlruns'}", "dataset.root=."]
    # two processes at once (they share the cache and the store, as parallel jobs do; a job folder each)
    workers = [CliWorker(tmp_path, [*base, f"hydra.run.dir=job{i}"]) for i in range(2)]

    def run_half(i: int) -> list[dict]:
        return [{"id": case["id"], **workers[i].run(case["overrides"])} for case in CASES[i::2]]

    with ThreadPoolExecutor(2) as pool:
        results = [result for half in pool.map(run_half, range(2)) for result in half]
    for worker in workers:
        worker.close()
    assert len(results) == len(CASES)
    problems = []
    for result in results:
        case = next(c for c in CASES if c["id"] == result["id"])
        lines = [line for line in result["stderr"].splitlines() if line.startswith("dsim: error:")]
        if result["code"] in (0, "exception") or len(lines) != 1 or "Traceback" in result["stderr"] \
                or case["expect"].lower() not in lines[0].lower():
            problems.append(f"{result['id']}: exit {result['code']}: {result['stderr'].strip()[-400:]}")
    assert not problems, "\n".join(problems)
    assert not any((tmp_path / f"job{i}" / "result.json").exists() for i in range(2))
