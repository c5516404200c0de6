#!/usr/bin/env bash
# Install and run the test suite (offline, CPU). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# Headless Chromium (Debian's package) for the test that renders the UMAP page; without it that test
# skips, except under CI=true where it fails.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
    SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; } \
        || echo "could not install chromium: the browser test will skip" >&2
fi
.venv/bin/python -m pytest "$@"
