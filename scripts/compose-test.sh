#!/usr/bin/env bash
# The compose cluster under faults, for real (`just compose-test`, run by
# .ci/run): build the image, start deploy/compose.yaml with TLS and a token,
# write through the CLI, then
#   1. `docker kill` the leader's container: writes go on through the others;
#   2. `docker network disconnect` a follower, write, reconnect: it catches up;
#   3. `docker compose restart` every node, one at a time, writing in between;
# and finally check that every acknowledged write is there and that the
# three nodes agree on the state digest at one applied index.
#
# Every write is a `vtask describe KEY --message N` with N rising per task; a
# task's final description must be its last acknowledged N, or the one
# attempt after it, which may have been applied without its answer arriving.
#
#   scripts/compose-test.sh [debug|release]   (default debug: the test profile's binaries)
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${1:-debug}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
vtask="$target/debug/vtask"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-vtask-test}"
work=$(mktemp -d)
# Its own secrets and host ports, so a `just up` cluster may run beside it.
export VTASK_SECRETS="$work/secrets" VTASK_GRPC_PORTS=720 VTASK_HTTP_PORTS=920
acked="$work/acked"     # lines "KEY N": N was acknowledged for KEY
touch "$acked"
tasks=6                 # one writer per task

fail() { echo "compose-test: FAILED: $*" >&2; scripts/compose.sh compose logs --tail 40 >&2 || true; exit 1; }
cleanup() {
    jobs -p | xargs -r kill 2>/dev/null || true
    scripts/compose.sh down --volumes >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

scripts/image.sh "$profile"
# A fresh cluster: the test's project, its own volumes and secrets.
scripts/compose.sh down --volumes >/dev/null 2>&1 || true
scripts/compose.sh up >"$work/up.log" || { cat "$work/up.log"; fail "the cluster did not come up"; }
cat "$work/up.log"
VTASK_ENDPOINTS=$(scripts/compose.sh endpoints)
VTASK_TOKEN=$(cat "$VTASK_SECRETS/admin.token")
export VTASK_ENDPOINTS VTASK_TOKEN VTASK_CA="$VTASK_SECRETS/ca.pem"

container() { scripts/compose.sh compose ps -q "vtask-$1"; }
# The id of the node that says it leads, once one does.
leader() {
    local deadline=$((SECONDS + 30)) id
    while :; do
        id=$("$vtask" --retry-for 2s -o json cluster status 2>/dev/null | python3 -c '
import json, sys
print(next((n["nodeId"] for n in map(json.loads, sys.stdin) if n.get("role") == "leader"), ""))' || true)
        [ -n "$id" ] && { echo "$id"; return; }
        [ $SECONDS -lt $deadline ] || fail "no node leads"
        sleep 0.5
    done
}
status_of() { curl -fs "http://127.0.0.1:$VTASK_HTTP_PORTS$1/status"; }

keys=()
for i in $(seq 1 $tasks); do
    key=$("$vtask" -o key create --type-id com.example.compose --entity VirtualMachine:vm-$i --cancelable)
    "$vtask" start "$key" >/dev/null
    keys+=("$key")
done
echo "compose-test: created ${keys[*]}"

# One writer per task: messages 1, 2, 3, ... until $work/stop exists.
writer() {
    local key=$1 n=0
    while [ ! -e "$work/stop" ]; do
        n=$((n + 1))
        if "$vtask" --retry-for 20s describe "$key" --key com.example.compose.step --message "$n" \
            >/dev/null 2>>"$work/writer-errors"; then
            echo "$key $n" >>"$acked"
        else
            echo "$key $n failed" >>"$work/writer-errors"
            return
        fi
        sleep 0.1
    done
}
start_writers() {
    rm -f "$work/stop"
    for key in "${keys[@]}"; do writer "$key" & done
}
stop_writers() { touch "$work/stop"; wait; }
acked_count() { wc -l <"$acked" 2>/dev/null || echo 0; }
# Waits until the acknowledged writes grow by $1 (writes go on).
writes_go_on() {
    local want=$(($(acked_count) + $1)) deadline=$((SECONDS + 60))
    until [ "$(acked_count)" -ge $want ]; do
        [ $SECONDS -lt $deadline ] || fail "writes stopped (acknowledged: $(acked_count), wanted $want)"
        sleep 0.2
    done
}

start_writers
writes_go_on 30

# 1. The leader's container dies.
old=$(leader)
docker kill "$(container "$old")" >/dev/null
echo "compose-test: killed the leader, vtask-$old"
writes_go_on 60
new=$(leader)
[ "$new" != "$old" ] || fail "vtask-$old still leads after its kill"
echo "compose-test: vtask-$new leads; writes went on ($(acked_count) acknowledged)"
docker start "$(container "$old")" >/dev/null
scripts/compose.sh wait 60 || fail "vtask-$old did not come back"

# 2. A follower is cut off the network, and comes back.
cut=$(( $(leader) % 3 + 1 ))
network="${COMPOSE_PROJECT_NAME//[^a-z0-9_-]/}_vtask"
docker network disconnect "$network" "$(container "$cut")"
echo "compose-test: disconnected vtask-$cut from $network"
writes_go_on 60
docker network connect --alias "vtask-$cut" "$network" "$(container "$cut")"
echo "compose-test: reconnected vtask-$cut"
writes_go_on 30

# 3. A rolling restart, one node at a time.
for id in 1 2 3; do
    scripts/compose.sh compose restart "vtask-$id" >/dev/null 2>&1
    scripts/compose.sh wait 60 || fail "vtask-$id did not come back after its restart"
    echo "compose-test: restarted vtask-$id"
    writes_go_on 20
done
stop_writers
if [ -s "$work/writer-errors" ]; then
    echo "compose-test: writer errors (retried by the CLI until they failed):" >&2
    cat "$work/writer-errors" >&2
    grep -q failed "$work/writer-errors" && fail "a write failed at the client"
fi

# Every acknowledged write is there, on every node's linearizable read.
lost=0
for key in "${keys[@]}"; do
    last=$(awk -v k="$key" '$1 == k { n = $2 } END { print n + 0 }' "$acked")
    for port in ${VTASK_GRPC_PORTS}1 ${VTASK_GRPC_PORTS}2 ${VTASK_GRPC_PORTS}3; do
        got=$("$vtask" --endpoints "127.0.0.1:$port" -o json get "$key" |
            python3 -c 'import json,sys; print((json.load(sys.stdin).get("description") or {}).get("message") or 0)')
        if [ "$got" -ne "$last" ] && [ "$got" -ne $((last + 1)) ]; then
            echo "compose-test: $key on :$port has step $got, last acknowledged $last" >&2
            lost=$((lost + 1))
        fi
    done
done
[ $lost -eq 0 ] || fail "$lost acknowledged writes lost"

# The nodes agree: the same digest at the same applied index.
deadline=$((SECONDS + 60))
while :; do
    s1=$(status_of 1); s2=$(status_of 2); s3=$(status_of 3)
    agreed=$(printf '%s\n%s\n%s\n' "$s1" "$s2" "$s3" | python3 -c '
import json, sys
nodes = [json.loads(line) for line in sys.stdin]
points = {(n["appliedIndex"], n["stateDigest"]) for n in nodes}
print("%s %s" % points.pop() if len(points) == 1 else "")')
    [ -n "$agreed" ] && break
    [ $SECONDS -lt $deadline ] || fail "digests differ: $s1 $s2 $s3"
    sleep 0.5
done
echo "compose-test: passed: $(acked_count) acknowledged writes, 0 lost; digests equal at applied index ${agreed% *} (${agreed#* })"
