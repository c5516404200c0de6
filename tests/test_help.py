"""``dsim --help`` is dsim's, not Hydra's: it lists the subcommands and the config groups; ``--version`` is
dsim's version; every subcommand answers ``--help``."""

from __future__ import annotations

import tomllib

import pytest

from dsim import configs
from dsim.cli.app import SUBCOMMANDS
from dsim_testing import REPO, run_dsim


def test_help_lists_every_subcommand_and_config_group(tmp_path):
    out = run_dsim("--help", cwd=tmp_path).stdout
    assert "Hydra" not in out.splitlines()[0]
    for name in SUBCOMMANDS:
        assert f"\n  {name} " in out, name
    for group in configs.GROUPS:
        assert f"\n  {group} " in out, group
    assert "efficientnet_lite0*" in out  # the default option is marked
    assert run_dsim("-h", cwd=tmp_path).stdout == out


def test_version_is_dsims(tmp_path):
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert run_dsim("--version", cwd=tmp_path).stdout.strip() == f"dsim {version}"


def test_hydras_own_help_stays_reachable(tmp_path):
    assert "Hydra" in run_dsim("--hydra-help", cwd=tmp_path).stdout


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_subcommand_answers_help(command, tmp_path):
    done = run_dsim(command, "--help", cwd=tmp_path)
    assert done.stdout.startswith(f"usage: dsim {command}"), done.stdout[:200]
