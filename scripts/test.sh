#!/usr/bin/env bash
# The test command: installs what is missing, builds everything, runs the whole test suite.
# Usage: scripts/test.sh [extra `swift test` arguments, e.g. --filter BourseWireTests]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
swift test --skip-build "$@"
