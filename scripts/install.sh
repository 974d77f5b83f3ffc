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

# The pages render presentations with pdf.js from npm (package.json, package-lock.json);
# the files they load are copied into web_ui/static/vendor/ (git-ignored), served
# from /static/ like the rest of the page: nothing is fetched from elsewhere.
if ! command -v npm >/dev/null 2>&1; then
    echo "install.sh: npm (Node.js 20.19 or newer) is needed for the presentation viewer;" \
         "install it (Debian: apt-get install nodejs npm) and run this again" >&2
    exit 1
fi
npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error
PDFJS=node_modules/pdfjs-dist
VENDOR=web_ui/static/vendor/pdfjs
rm -rf "$VENDOR"
mkdir -p "$VENDOR"
# The legacy build: phones with an older browser still show the presentation.
# As .js: every mime table knows that name, and module scripts need a JavaScript type.
cp "$PDFJS/legacy/build/pdf.min.mjs" "$VENDOR/pdf.min.js"
cp "$PDFJS/legacy/build/pdf.worker.min.mjs" "$VENDOR/pdf.worker.min.js"
cp "$PDFJS/LICENSE" "$VENDOR/"
cp -r "$PDFJS/cmaps" "$PDFJS/standard_fonts" "$PDFJS/wasm" "$VENDOR/"
echo "installed: pdf.js $(node -p "require('./$PDFJS/package.json').version") into $VENDOR"
