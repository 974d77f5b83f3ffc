#!/usr/bin/env bash
# Install what is needed, then start the server with a demo defense day on the
# embedded defaults (SQLite and recordings under ./data). Extra arguments go to
# "defense-room serve", e.g. --port 9443.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/defense-room serve --demo "$@"
