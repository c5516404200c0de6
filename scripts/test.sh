#!/usr/bin/env bash
# Install and run the test suite (offline, CPU). Extra arguments go to pytest.
#   bash scripts/test.sh          the full tier (what CI runs): every test, slow ones included
#   bash scripts/test.sh --fast   the fast tier (under 5 minutes on 2 cores): lint, types, the docs build and
#                                 the tests not marked slow
set -euo pipefail
cd "$(dirname "$0")/.."
tier=()
if [ "${1:-}" = "--fast" ]; then
    shift
    tier=(-m "not slow")
fi
bash scripts/install.sh
# Services the tests start themselves (Debian's packages): headless Chromium for the test that renders the
# UMAP page, PostgreSQL for the team-server test. Without them those tests skip, except under CI=true.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; } \
        || echo "could not install ${missing[*]}: the tests that need them will skip" >&2
fi
# lint, format and types first (seconds): pyproject.toml's [tool.ruff] and [tool.mypy]
.venv/bin/ruff check dsim
.venv/bin/ruff format --check dsim
.venv/bin/mypy
# the documentation site: any warning (a broken link, a missing page, a docstring mkdocstrings cannot read) fails
site=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$site"
rm -rf "$site"
.venv/bin/python -m pytest ${tier[@]+"${tier[@]}"} "$@"
# every docstring example in dsim/ runs (or is marked +SKIP where it needs data or weights that are not here)
.venv/bin/python -m pytest -q -p no:cacheprovider --doctest-modules dsim
