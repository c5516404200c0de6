"""README.md and docs/ say nothing that does not run: every fenced ``bash``/``sh``/``shell``/``console``/
``python`` block runs here, or the line right before it says why it cannot (``<!-- not run: REASON -->``).

- fast: the README's length, the mkdocs nav, the markers; every ``dsim`` command of every shell block is
  composed by Hydra without running a cell (``--cfg=job``, each value of each comma list once) or, for a
  subcommand, run with ``--help`` and its flags looked up in that help; ``console`` blocks run and must
  print what they show;
- slow: the runnable blocks of a page run in order, for real, in a fresh folder holding the shipped data
  (offline, the venv's ``dsim`` and ``python`` first on ``PATH``); a block fails when it exits non-zero. Every
  page runs in the full tier (all 20 together about 5 minutes on 2 CPU cores, the README 1 minute);
  ``CORE`` names the pages that must have runnable blocks (the tour, and every page with Python blocks or a
  mechanism no other page runs).

Run as ``python tests/test_docs.py dry`` (JSON argv lists on stdin), this file is the in-process runner of
the fast command check.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
LANGUAGES = {"bash", "sh", "shell", "console", "python"}
SHELL = {"bash", "sh", "shell"}
MARKER = re.compile(r"^\s*<!--\s*not run\b:?(.*?)-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^\s`]*)")
EXCLUDED = ("_hooks/",)  # mkdocs.yml's exclude_docs
#: pages that must keep runnable blocks: the tour, and every page with Python blocks or a mechanism no other
#: page runs
CORE = {
    "README.md",
    "docs/concepts/cell-key.md",
    "docs/concepts/lineage.md",
    "docs/concepts/store.md",
    "docs/getting-started.md",
    "docs/guides/extending.md",
    "docs/reference/configuration.md",
    "docs/reference/metrics.md",
    "docs/reference/python-api.md",
    "docs/reliability.md",
}
SAME_AS_README = "the same block as README.md"
VENV = REPO / ".venv" if (REPO / ".venv" / "bin" / "python").exists() else Path(sys.prefix)
BIN = VENV / "bin"


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    reason: str | None  # the not-run marker's reason; None: the block runs

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def pages() -> list[Path]:
    docs = sorted(p for p in DOCS.rglob("*.md") if not str(p.relative_to(DOCS)).startswith(EXCLUDED))
    return [REPO / "README.md", *docs]


def parse(page: Path) -> tuple[list[Block], list[str]]:
    """The page's fenced blocks of the collected languages, and what is wrong with its markers and fences."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, problems = [], []
    i, pending = 0, None  # pending: (line number, reason) of a marker waiting for its block
    while i < len(lines):
        line = lines[i]
        marker = MARKER.match(line)
        fence = FENCE.match(line)
        if marker:
            if pending:
                problems.append(f"{page.name}:{pending[0]}: not-run marker without a block right after it")
            pending = (i + 1, marker.group(1).strip())
        elif fence:
            indent, ticks, lang = fence.groups()
            start = i
            i += 1
            while i < len(lines) and not (
                lines[i].strip().startswith(ticks[0] * len(ticks)) and lines[i].strip().strip(ticks[0]) == ""
            ):
                i += 1
            body = "\n".join(ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[start + 1 : i])
            lang = lang.lower()
            if not lang:
                problems.append(f"{page.name}:{start + 1}: a fence without a language (say text, yaml, bash, ...)")
            reason = None
            if pending:
                if not pending[1]:
                    problems.append(f"{page.name}:{pending[0]}: a not-run marker needs a reason")
                if lang not in LANGUAGES:
                    problems.append(f"{page.name}:{pending[0]}: not-run marker on a {lang or 'plain'} block")
                reason, pending = pending[1] or "?", None
            if lang in LANGUAGES:
                blocks.append(Block(page, start + 1, lang, body + "\n", reason))
        elif pending and line.strip():
            problems.append(f"{page.name}:{pending[0]}: not-run marker without a block right after it")
            pending = None
        i += 1
    if pending:
        problems.append(f"{page.name}:{pending[0]}: not-run marker without a block right after it")
    return blocks, problems


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in parse(page)[0]]


# --- fast: structure ------------------------------------------------------------------------------------


def test_readme_is_at_most_200_lines():
    n = len((REPO / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= 200, f"README.md has {n} lines: move the detail into docs/ (the README links there)"


def _nav_files(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [f for item in nav for f in _nav_files(item)]
    if isinstance(nav, dict):
        return [f for value in nav.values() for f in _nav_files(value)]
    return []


def test_every_docs_page_is_in_the_nav_and_every_nav_entry_exists():
    import yaml

    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    listed = _nav_files(config["nav"])
    present = [str(p.relative_to(DOCS)) for p in pages()[1:]]
    assert sorted(set(present) - set(listed)) == [], "docs pages missing from mkdocs.yml's nav"
    assert sorted(set(listed) - set(present)) == [], "mkdocs.yml's nav names pages that do not exist"
    assert len(listed) == len(set(listed)), "a page is in the nav twice"


def test_every_block_runs_or_says_why_not():
    problems = [p for page in pages() for p in parse(page)[1]]
    assert problems == []
    blocks = all_blocks()
    assert len(blocks) >= 40 and sum(b.reason is None for b in blocks) >= 25  # the collector sees the blocks


def test_blocks_marked_as_the_readmes_are_the_readmes():
    readme = {b.code for b in parse(REPO / "README.md")[0]}
    copies = [b for b in all_blocks() if b.reason and b.reason.startswith(SAME_AS_README)]
    assert copies
    assert [b.where for b in copies if b.code not in readme] == [], "these blocks differ from the README's now"


def test_the_parser_sees_markers_and_languages(tmp_path):
    page = tmp_path / "x.md"
    page.write_text(
        "<!-- not run: needs Slurm -->\n```bash\ndsim -m x=1,2\n```\n\n```python\nprint(1)\n```\n"
        "<!-- not run -->\n```sh\nls\n```\n```\nplain\n```\n<!-- not run: dangling -->\ntext\n"
    )
    blocks, problems = parse(page)
    assert [(b.lang, b.reason, b.line) for b in blocks] == [
        ("bash", "needs Slurm", 2),
        ("python", None, 6),
        ("sh", "?", 10),
    ]
    assert [p.split(": ", 1)[1] for p in problems] == [
        "a not-run marker needs a reason",
        "a fence without a language (say text, yaml, bash, ...)",
        "not-run marker without a block right after it",
    ]


# --- fast: every dsim command exists ----------------------------------------------------------------------

_HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
_SEPARATORS = {";", "&&", "||", "|", "(", ")", "&"}
_PROJECT_CONF = re.compile(r"(?:>|mkdir\s+-p)\s*\S*conf/|dsim init")


def shell_commands(code: str) -> list[list[str]]:
    """The simple commands of a shell block (continuations joined, heredoc bodies and comments dropped,
    ``$VAR`` as ``X``), each as its words."""
    kept, delimiter = [], None
    for line in code.splitlines():
        if delimiter is not None:
            delimiter = None if line.strip() == delimiter else delimiter
            continue
        heredoc = _HEREDOC.search(line)
        if heredoc:
            delimiter = heredoc.group(1)
            line = line[: heredoc.start()]
        kept.append(line)
    text = re.sub(r"\\\n", " ", "\n".join(kept))
    commands = []
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            words = list(lexer)
        except ValueError:  # unbalanced quotes inside $(...): not a command of ours
            continue
        command: list[str] = []
        for word in [*words, ";"]:
            if word in _SEPARATORS or set(word) <= set(";&|()"):
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(re.sub(r"\$\{?\w+\}?", "X", word))
    out = []
    for command in commands:
        while command and (re.match(r"^[A-Za-z_]\w*=", command[0]) or command[0] in ("do", "then", "else", "time")):
            command = command[1:]  # VAR=value prefixes, loop and if bodies
        if command:
            out.append(command)
    return out


def dsim_commands(code: str) -> list[list[str]]:
    return [c[1:] for c in shell_commands(code) if Path(c[0]).name == "dsim"]


def script_problems(code: str) -> list[str]:
    """``bash scripts/X.sh --flag``: the script must exist and handle each flag it is given."""
    problems = []
    for command in shell_commands(code):
        if command[0] in ("bash", "sh") and len(command) > 1 and command[1].startswith("scripts/"):
            script = REPO / command[1]
            if not script.is_file():
                problems.append(f"{command[1]} does not exist")
                continue
            text = script.read_text()
            for flag in (w.split("=")[0] for w in command[2:] if w.startswith("--")):
                # flags the script passes to pytest (extra arguments) count when pytest or conftest knows them
                known = flag in text or flag in (REPO / "tests" / "conftest.py").read_text()
                if not known:
                    problems.append(f"{command[1]} does not handle {flag}")
    return problems


def _checked_commands() -> list[tuple[str, list[str]]]:
    """(where, dsim argv) of every shell block, up to where a page writes a project conf/ of its own: from
    there on the page's commands need that config, and only the slow run of the page checks them."""
    checked = []
    for page in pages():
        for block in parse(page)[0]:
            if block.lang not in SHELL:
                continue
            if _PROJECT_CONF.search(block.code):
                break
            checked += [(block.where, argv) for argv in dsim_commands(block.code)]
    return checked


def test_the_command_parser_finds_dsim_commands():
    code = (
        "RAY_ADDRESS=h:1 dsim -m a=1,2 \\\n    b=3   # comment\ncat > f <<'PY'\ndsim not-a-command\nPY\n"
        "for d in x y; do\n  dsim c=$d\ndone\nrun=$(python -c 'print(1)')\n"
        '.venv/bin/dsim --help && dsim lineage "$run"\n'
    )
    assert dsim_commands(code) == [["-m", "a=1,2", "b=3"], ["c=X"], ["--help"], ["lineage", "X"]]


def test_every_script_a_block_runs_exists_and_takes_its_flags():
    problems = [f"{b.where}: {p}" for b in all_blocks() if b.lang in SHELL for p in script_problems(b.code)]
    assert problems == []


def test_every_dsim_command_in_the_docs_exists(tmp_path):
    checked = _checked_commands()
    assert len(checked) >= 40
    results = _dry_run([argv for _, argv in checked], tmp_path)
    failures = [
        f"{where}: dsim {shlex.join(argv)}\n    {' / '.join(problems)}"
        for (where, argv), problems in zip(checked, results)
        if problems
    ]
    assert not failures, "commands of the docs that do not exist:\n" + "\n".join(failures)


def _dry_run(commands: list[list[str]], folder: Path) -> list[list[str]]:
    """Each command's problems (none: it composes / its flags exist), from one process running them all."""
    done = subprocess.run(
        [str(BIN / "python"), str(Path(__file__).resolve()), "dry"],
        input=json.dumps(commands),
        capture_output=True,
        text=True,
        cwd=folder,
        env=_environment(folder),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- fast: console blocks show what the command prints ------------------------------------------------------


def console_sessions(code: str) -> list[tuple[str, list[str]]]:
    """``$ command`` lines, each with the output lines shown after it."""
    sessions: list[tuple[str, list[str]]] = []
    for line in code.splitlines():
        if line.startswith("$ "):
            sessions.append((line[2:], []))
        elif sessions and line.strip():
            sessions[-1][1].append(line.strip())
    return sessions


def test_console_blocks_print_what_they_show(tmp_path):
    blocks = [b for b in all_blocks() if b.lang == "console" and b.reason is None]
    assert blocks
    for block in blocks:
        for command, shown in console_sessions(block.code):
            done = subprocess.run(
                ["bash", "-c", command],
                capture_output=True,
                text=True,
                cwd=tmp_path,
                env=_environment(tmp_path),
                timeout=300,
            )
            printed = [line.strip() for line in (done.stdout + done.stderr).splitlines()]
            missing = [line for line in shown if line not in printed]
            assert not missing, f"{block.where}: `{command}` no longer prints {missing}; it printed:\n{printed}"


# --- slow: every runnable block runs ------------------------------------------------------------------------


def _environment(folder: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "VIRTUAL_ENV"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HF_HUB_OFFLINE="1",
        DSIM_OFFLINE="1",
        DSIM_STATE_DIR=str(folder / ".dsim-state"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def _pages_with_runnable_blocks() -> list[Path]:
    return [page for page in pages() if any(b.reason is None and b.lang != "console" for b in parse(page)[0])]


def _shipped_data_and_cache(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "docs-shared"
    if not (root / "data" / "render").is_dir():
        root.mkdir(exist_ok=True)
        done = subprocess.run(
            [str(BIN / "dsim"), "data", "--root", str(root / "data"), "--no-dvc"],
            capture_output=True,
            text=True,
            env=_environment(root),
            timeout=300,
        )
        if done.returncode != 0:
            pytest.fail(f"dsim data failed: {done.stderr[-2000:]}")
        (root / "cache").mkdir(exist_ok=True)
    return root / "data", root / "cache"


def _run_page(page: Path, folder: Path, data: Path, cache: Path) -> None:
    shutil.copytree(data, folder / "data")
    (folder / "cache").symlink_to(cache)  # one embedding store for every page: each image is embedded once
    (folder / ".venv").symlink_to(VENV)
    env = _environment(folder)
    for n, block in enumerate(parse(page)[0]):
        if block.reason is not None or block.lang == "console":
            continue
        if block.lang == "python":
            script = folder / f".block-{n}.py"
            script.write_text(block.code)
            command = [str(BIN / "python"), str(script)]
        else:
            script = folder / f".block-{n}.sh"
            script.write_text(block.code)
            command = ["bash", "-eo", "pipefail", str(script)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=folder, env=env, timeout=600)
        if done.returncode != 0:
            output = "\n".join(line for line in (done.stdout + done.stderr).splitlines() if "img/s" not in line)
            raise AssertionError(
                f"{block.where}: the {block.lang} block exits {done.returncode}:\n{block.code}\n--- output ---\n"
                f"{output[-4000:]}"
            )


def pytest_generate_tests(metafunc):
    if "docs_page" in metafunc.fixturenames:
        found = [str(p.relative_to(REPO)) for p in _pages_with_runnable_blocks()]
        assert CORE <= set(found), f"CORE names pages without runnable blocks: {sorted(CORE - set(found))}"
        params = [pytest.param(REPO / p, id=p) for p in found]
        metafunc.parametrize("docs_page", params)


@pytest.mark.slow
def test_every_runnable_block_of_the_page_runs(docs_page, tmp_path, tmp_path_factory):
    data, cache = _shipped_data_and_cache(tmp_path_factory)
    _run_page(docs_page, tmp_path, data, cache)


# --- the in-process runner of the fast command check ----------------------------------------------------------


def _variants(argv: list[str]) -> list[list[str]]:
    """One single-cell argv per value of each comma list (the others at their first value), ``--cfg=job``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    options = [a for a in argv if a.startswith("-") and a not in ("-m", "--multirun")]
    choices = []
    for text in (a for a in argv if not a.startswith("-")):
        override = parser.parse_override(text)
        if override.is_sweep_override():
            key = override.get_key_element()
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            choices.append([text])
    base = [c[0] for c in choices]
    out = [base]
    for i, values in enumerate(choices):
        out += [base[:i] + [value] + base[i + 1 :] for value in values[1:]]
    cfg = [] if any(o.startswith("--cfg") for o in options) else ["--cfg=job"]
    return [[*options, *variant, *cfg] for variant in out]


def _run_dsim(argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    from hydra.core.global_hydra import GlobalHydra

    from dsim.cli.app import main

    out = io.StringIO()
    code: int | str = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException as error:  # noqa: BLE001 - reported as the command's problem
            out.write(f"{type(error).__name__}: {error}")
            code = 1
    GlobalHydra.instance().clear()
    return int(code), out.getvalue()


def _check(argv: list[str]) -> list[str]:
    from dsim.cli.app import SUBCOMMANDS

    if argv and argv[0] in SUBCOMMANDS:
        code, shown = _run_dsim([*argv, "--help"])
        if code != 0:
            return [f"`dsim {shlex.join(argv)} --help` exits {code}: {shown.strip()[-300:]}"]
        flags = {w.split("=")[0] for w in argv[1:] if w.startswith("--")}
        return [f"dsim {argv[0]} has no option {flag}" for flag in sorted(flags) if flag not in shown]
    if argv and argv[0] in ("-h", "--help", "--version", "--hydra-help"):
        code, shown = _run_dsim(argv)
        return [] if code == 0 else [f"exits {code}: {shown.strip()[-300:]}"]
    try:
        variants = _variants(argv)
    except Exception as error:  # noqa: BLE001 - an override Hydra cannot parse
        return [f"Hydra cannot parse the overrides: {error}"]
    problems = []
    for variant in variants:
        code, shown = _run_dsim(variant)
        if code != 0:
            last = [ln for ln in shown.strip().splitlines() if ln.strip()][-1:] or [""]
            problems.append(f"`dsim {shlex.join(variant)}` exits {code}: {last[0][:300]}")
    return problems


def _dry_main() -> None:
    import tempfile

    commands = json.loads(sys.stdin.read())
    with tempfile.TemporaryDirectory() as fake_bin:  # hydra/launcher=submitit_slurm composes where sbatch is
        sbatch = Path(fake_bin) / "sbatch"
        sbatch.write_text("#!/bin/sh\nexit 1\n")
        sbatch.chmod(0o755)
        os.environ["PATH"] = f"{fake_bin}{os.pathsep}{os.environ['PATH']}"
        results = [_check(argv) for argv in commands]
    print(json.dumps(results))


if __name__ == "__main__" and sys.argv[1:] == ["dry"]:
    _dry_main()
