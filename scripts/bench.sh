#!/usr/bin/env bash
# vtask's side of issue #6's comparison: a fresh local three-node cluster
# (scripts/dev.sh up, ports 7001-7003 and 9001-9003, fsync on), loaded by
# `vtask bench` at each client count, then stopped and its data removed.
# scripts/bench-etcd.sh is the etcd side, with the same workloads and flags.
#
# Usage: scripts/bench.sh [extra vtask bench flags...]
# Environment: BENCH_WORKLOADS (default progress,get), BENCH_CLIENTS
# (default 1,16,64,256), BENCH_DURATION (10s), BENCH_WARMUP (2s).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$PWD/target}"
# Figures come from the build users run: the nodes (scripts/dev.sh) and the
# load generator are the release build (scripts/release.sh).
export VTASK_PROFILE=release
vtask="$target/release/vtask"
workloads="${BENCH_WORKLOADS:-progress,get}"
clients="${BENCH_CLIENTS:-1,16,64,256}"
duration="${BENCH_DURATION:-10s}"
warmup="${BENCH_WARMUP:-2s}"

if curl -fs http://127.0.0.1:9001/health >/dev/null 2>&1; then
    echo "a vtask node already serves 127.0.0.1:9001 (just dev-down?); not benchmarking beside it" >&2
    exit 1
fi

export VTASK_DEV_DIR
VTASK_DEV_DIR=$(mktemp -d -t vtask-bench.XXXXXX)
stop() {
    scripts/dev.sh down >/dev/null
    rm -rf "$VTASK_DEV_DIR"
}
trap stop EXIT
# The load generator sends no token, so the cluster runs without
# authentication (a token check is one SHA-256 per call; it does not change
# the comparison with etcd, which runs without auth too).
VTASK_DEV_INSECURE=1 scripts/dev.sh up >/dev/null

server_pids=$(cat "$VTASK_DEV_DIR"/node-*.pid | paste -sd, -)
# The clients talk to the leader, as vtask-client does once a reply has
# named it: a follower would forward every write over one more gRPC hop.
# BENCH_SPREAD=1 spreads them over all three nodes instead.
endpoints=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
if [ "${BENCH_SPREAD:-0}" != 1 ]; then
    leader=$(curl -fs http://127.0.0.1:9001/status | sed -n 's/.*"leaderId":\([0-9]*\).*/\1/p')
    [ -n "$leader" ] && endpoints="127.0.0.1:700$leader"
fi
"$vtask" bench --target vtask --endpoints "$endpoints" \
    --server-pids "$server_pids" \
    "$workloads" --clients "$clients" --duration "$duration" --warmup "$warmup" "$@"
