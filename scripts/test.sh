#!/usr/bin/env bash
# The test command: installs what is missing, builds everything, runs the whole test suite.
# Usage: scripts/test.sh [extra `swift test` arguments, e.g. --filter BourseWireTests]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
if [ "$#" -gt 0 ]; then
  swift test --skip-build "$@"
else
  # The tests that start real processes (BourseCLITests: clusters, gateways, agents, with wall
  # clock bounds such as a killed shard seen dead within 5 s) run after the others, one at a
  # time, so that they do not share the 2 cores of a CI machine with the CPU-bound suites.
  swift test --skip-build --skip BourseCLITests
  swift test --skip-build --filter BourseCLITests --no-parallel
fi
