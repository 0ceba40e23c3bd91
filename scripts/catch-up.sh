#!/usr/bin/env bash
# How long a new member takes to catch up: fills a fresh `just dev` cluster
# with TASKS tasks (`vtask bench create`, 64 clients), then starts node 4
# with `--join` and times it until it is a voter. The log was compacted long
# before (a snapshot every 10,000 entries), so node 4 catches up from a
# snapshot. Builds nothing: run `just build` first.
#
#   scripts/catch-up.sh [TASKS]      default 100000
set -euo pipefail
cd "$(dirname "$0")/.."
tasks="${1:-100000}"
target="${CARGO_TARGET_DIR:-target}"
vtask="$target/debug/vtask"
vtaskd="$target/debug/vtaskd"
export VTASK_DEV_INSECURE=1 VTASK_USER=admin
export VTASK_ENDPOINTS=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
# A cluster of its own, not `just dev`'s .dev: it ends up with a fourth member.
export VTASK_DEV_DIR
VTASK_DEV_DIR=$(mktemp -d /tmp/vtask-catch-up.XXXXXX)
dev="$VTASK_DEV_DIR"
scripts/dev.sh up >/dev/null
trap 'kill "$(cat "$dev/node-4.pid" 2>/dev/null)" 2>/dev/null || true; scripts/dev.sh down >/dev/null; rm -rf "$dev"' EXIT
created=0
while [ "$created" -lt "$tasks" ]; do
    ops=$("$vtask" bench create --clients 64 --duration 10s --warmup 0s -o json 2>/dev/null |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["ops"])')
    created=$((created + ops))
    echo "catch-up: $created tasks created"
done
started=$(date +%s%N)
"$vtaskd" --insecure --node-id 4 --listen 127.0.0.1:7004 --advertise 127.0.0.1:7004 \
    --http 127.0.0.1:9004 --data-dir "$dev/node-4" --join "$VTASK_ENDPOINTS" >"$dev/node-4.log" 2>&1 &
echo $! >"$dev/node-4.pid"
until "$vtask" member list -o json 2>/dev/null | grep -q '"nodeId":4,.*"role":"voter"'; do
    sleep 0.1
done
took=$((($(date +%s%N) - started) / 1000000))
echo "catch-up: node 4 joined a cluster of $created tasks and was a voter after $took ms"
"$vtask" member list
sed 's/\x1b\[[0-9;]*m//g' "$dev"/node-*.log | grep -o 'caught_up_ms=[0-9]*' | head -1 || true
