#!/usr/bin/env bash
# pyVmomi itself (tests/soap) against real vtaskd processes: the Python client
# tests' three-node cluster (TLS, a users file with Argon2 passwords, one
# session key for every node), which the tests start on free loopback ports.
#
#   scripts/soap-test.sh              set up the venv, build, run them all
#   scripts/soap-test.sh -k collector extra arguments go to pytest
#
# Installs pyVmomi into the project's venv (${VTASK_VENV:-.venv}) through
# `sh scripts/setup.sh soap`, builds with the project's one build command,
# and exits with pytest's status.
set -euo pipefail
cd "$(dirname "$0")/.."

sh scripts/setup.sh soap
venv="${VTASK_VENV:-.venv}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --workspace --all-targets
export VTASK_BIN_DIR="$target/debug"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/soap "$@"
