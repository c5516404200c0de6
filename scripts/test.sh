#!/usr/bin/env bash
# Install and run the test suite (offline, CPU). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
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
.venv/bin/python -m pytest "$@"
# every docstring example in dsim/ runs (or is marked +SKIP where it needs data or weights that are not here)
.venv/bin/python -m pytest -q -p no:cacheprovider --doctest-modules dsim
