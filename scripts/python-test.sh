#!/usr/bin/env bash
# The Python client's tests (clients/python/tests) against real vtaskd
# processes: a three-node cluster with TLS and bearer tokens that the tests
# start on free loopback ports and stop again (see tests/conftest.py).
#
#   scripts/python-test.sh              set up the venv, build, run them all
#   scripts/python-test.sh -k watch     extra arguments go to pytest
#
# Installs the venv (${VTASK_VENV:-.venv}) with the client and its test tools
# through `sh scripts/setup.sh python`, builds the binaries with the
# project's one build command, and exits with pytest's status.
set -euo pipefail
cd "$(dirname "$0")/.."

sh scripts/setup.sh python
venv="${VTASK_VENV:-.venv}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
# A no-op when `just build` ran first; the same command every recipe uses.
cargo build --workspace --all-targets
export VTASK_BIN_DIR="$target/debug"
exec "$venv/bin/python" -m pytest -q clients/python/tests "$@"
