#!/usr/bin/env bash
# Create .venv and install the server (add "test" to include the test tools).
# face_recognition is installed without its dependencies: its "dlib" requirement
# would compile dlib from source for many minutes, while the dlib-bin wheel (listed
# in pyproject.toml) already provides the same "dlib" module.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
EXTRAS=""
[[ "${1:-}" == "test" ]] && EXTRAS="[test]"

if [[ ! -x .venv/bin/python ]]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${EXTRAS}"
.venv/bin/python -m pip install --quiet --no-deps "face_recognition==1.3.0"
.venv/bin/python -c "import dlib, face_recognition, aiortc, av; print('installed: aiortc', aiortc.__version__, '| av', av.__version__, '| dlib', dlib.__version__)"
