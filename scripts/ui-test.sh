#!/usr/bin/env bash
# The web view's browser test (tests/ui/ui.test.mjs): Debian's chromium,
# headless, driven by playwright-core, against a real three-node cluster with
# TLS and tokens that the test starts on free loopback ports and stops.
#
#   scripts/ui-test.sh                          set up, build, run it
#   scripts/ui-test.sh --test-name-pattern=Cancel   extra arguments go to `node --test`
#
# Installs chromium and Node.js through `sh scripts/setup.sh browser`,
# playwright-core from the npm registry with `npm ci` (tests/ui/package-lock.json),
# builds the binaries with the project's one build command, and exits with
# the test runner's status. Screenshots of every page land in
# $CARGO_TARGET_DIR/ui-screenshots (not in git).
set -euo pipefail
cd "$(dirname "$0")/.."

sh scripts/setup.sh browser
# Where setup put a Node.js of its own, if the machine's was too old.
node_dir="${VTASK_NODE_DIR:-$HOME/.cache/vtask/node}"
[ -x "$node_dir/bin/node" ] && export PATH="$node_dir/bin:$PATH"
target="${CARGO_TARGET_DIR:-$PWD/target}"
# A no-op when `just build` ran first; the same command every recipe uses.
cargo build --workspace --all-targets
# Installed again only when the lock file changed since the last install.
stamp=tests/ui/node_modules/.vtask-lock
if [ "$(cat "$stamp" 2>/dev/null)" != "$(cksum <tests/ui/package-lock.json)" ]; then
    (cd tests/ui && npm ci --no-audit --no-fund --loglevel=error)
    cksum <tests/ui/package-lock.json >"$stamp"
fi
export VTASK_BIN_DIR="$target/debug"
export VTASK_UI_SCREENSHOTS="$target/ui-screenshots"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
cd tests/ui
exec node --test --test-concurrency=1 --test-timeout=300000 "$@" ui.test.mjs
