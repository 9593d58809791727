#!/usr/bin/env bash
# The test command: installs what is missing, builds (Release, -j2) and runs the
# whole suite with ctest. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "${JOBS:-2}"
