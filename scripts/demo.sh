#!/usr/bin/env bash
# The main job: install, write the embedded default datasets, run the default grid
# (extractor x metric x pair) and print the results table. Extra arguments go to `dsim -m`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/dsim data
.venv/bin/dsim -m experiment=default_grid "$@"
