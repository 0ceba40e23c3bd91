#!/usr/bin/env bash
# Spurious elections under load: a fresh local cluster (release build) runs
# `vtask bench progress` at C clients for DURATION; the Raft term of every
# node (`vtask_raft_term` on /metrics) is read before and after. Any rise is
# an election that no fault caused. The clients are spread over the three
# nodes (followers forward), which loads the machine more than `just bench`.
#
#   scripts/steady-leader.sh [DURATION] [CLIENTS]     default 600s, 64
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-600s}"
clients="${2:-64}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
export VTASK_PROFILE=release VTASK_DEV_INSECURE=1 VTASK_USER=admin
vtask="$target/release/vtask"
[ -x "$vtask" ] || scripts/release.sh
export VTASK_DEV_DIR
VTASK_DEV_DIR=$(mktemp -d /tmp/vtask-steady-leader.XXXXXX)
trap 'scripts/dev.sh down >/dev/null; rm -rf "$VTASK_DEV_DIR"' EXIT
scripts/dev.sh up >/dev/null
terms() {
    for port in 9001 9002 9003; do
        curl -fs "http://127.0.0.1:$port/metrics" | awk '$1 == "vtask_raft_term" {printf "%s ", $2}'
    done
}
before=$(terms)
"$vtask" --endpoints 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 bench progress \
    --clients "$clients" --duration "$duration" --warmup 2s
after=$(terms)
echo "Raft terms of nodes 1-3 before: $before, after: $after"
read -r b1 _ <<<"$before"
max_after=$(printf '%s\n' $after | sort -n | tail -1)
echo "elections during the run: $((max_after - b1))"
