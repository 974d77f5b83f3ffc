#!/usr/bin/env bash
# Install what is needed and run every test. The tests run inside a private network
# namespace (scripts/netns-run): real WebRTC peers and Chromium talk only to each
# other there. Browser tests need Debian's chromium (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test
exec scripts/netns-run .venv/bin/python -m pytest -p no:cacheprovider "$@"
