"""One pipeline: every bad value the CLI answers with one ``dsim: error:`` line, ``dsim.compare`` raises as
the same :class:`~dsim.errors.DsimError` (``tests/test_bad_values.py``'s cases, driven through the API)."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from test_bad_values import CASES

import dsim
from dsim.cell.key import OPERATIONAL_KEYS
from dsim.errors import DsimError
from dsim.pipeline.comparison import CHOOSABLE
from dsim_testing import write_crops

#: keys of the command line and its jobs, not of a comparison: the tracking store, the results file, a
#: task=embed job (``compare(record=True)`` takes the store from the environment)
CLI_ONLY = ("task.", "tracking.", "results_file")


def _call(overrides: list[str]) -> dict:
    """``compare``'s arguments for a command line's overrides (values typed as Hydra types them)."""
    call: dict = {"metrics": "fid", "extractor": "pixels", "reference": "ref", "candidate": "cand", "options": {}}
    for override in OverridesParser.create().parse_overrides(overrides):
        key, value = override.key_or_group, override.value()
        if key == "task":  # task=cell: a comparison is a cell
            assert value == "cell", overrides
        elif key == "metric":
            call["metrics"] = value
        elif key in ("extractor", "generator"):
            call[key] = value
        elif key == "pair.reference":
            call["reference"] = value
        elif key == "pair.candidate":
            call["candidate"] = value
        else:  # a group choice (perturb=blur) or a key (metric.params.subset_size=abc)
            assert key in CHOOSABLE or "." in key or key in ("device", *OPERATIONAL_KEYS), key
            call["options"][key] = value
    return call


API_CASES = [case for case in CASES if not any(o.startswith(CLI_ONLY) or o.startswith("task=embed")
                                               for o in case["overrides"])]


def test_most_of_the_cli_cases_apply_to_compare():
    assert len(API_CASES) > 0.8 * len(CASES) and len(API_CASES) > 60


@pytest.mark.slow
def test_compare_raises_the_clis_error_for_every_bad_value(tmp_path, monkeypatch):
    for side, seed in (("ref", 1), ("cand", 2)):
        write_crops(tmp_path / side, 6, seed, size=32)
    monkeypatch.chdir(tmp_path)
    base = {"progress": False, "device": "cpu", "cache_dir": str(tmp_path / "cache"), "dataset.root": "."}
    problems = []
    for case in API_CASES:
        call = _call(case["overrides"])
        options = {**base, **call.pop("options")}
        reference, candidate = call.pop("reference"), call.pop("candidate")
        try:
            dsim.compare(reference, candidate, **call, job_dir=tmp_path / "jobs", **options)
        except DsimError as error:
            message = str(error)
            if case["expect"].lower() not in message.lower() or "\n" in message.strip():
                problems.append(f"{case['id']}: {message}")
        except Exception as error:  # noqa: BLE001  (any other exception is the bug this test is for)
            problems.append(f"{case['id']}: {type(error).__name__}: {error}")
        else:
            problems.append(f"{case['id']}: no error")
    assert not problems, "\n".join(problems)
