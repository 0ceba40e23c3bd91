#!/usr/bin/env bash
# The write gap of a leader change under load: the longest pause between two
# answered UpdateProgress calls of 16 clients (`vtask bench`, longestPauseMs)
# while the leader of a fresh `just dev` cluster is moved away.
#
#   scripts/write-gap.sh transfer [RUNS]   planned: `vtask leader transfer`
#   scripts/write-gap.sh kill [RUNS]       SIGKILL of the leader
#
# The clients talk to the two followers only, so the gap is the cluster's
# (a new leader taking writes), not a client noticing a dead connection.
# Prints each run's gap and the median. Builds nothing: run `just release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
fault="${1:?usage: scripts/write-gap.sh transfer|kill [RUNS]}"
runs="${2:-5}"
clients="${WRITE_GAP_CLIENTS:-16}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
# Figures come from the build users run: the nodes (scripts/dev.sh) and the
# load generator are the release build (scripts/release.sh).
export VTASK_PROFILE=release
vtask="$target/release/vtask"
case "$fault" in transfer | kill) ;; *) echo "unknown fault $fault" >&2; exit 2 ;; esac
export VTASK_DEV_INSECURE=1 VTASK_USER=admin
# Fresh clusters of its own, not `just dev`'s .dev.
export VTASK_DEV_DIR
VTASK_DEV_DIR=$(mktemp -d /tmp/vtask-write-gap.XXXXXX)
trap 'scripts/dev.sh down >/dev/null; rm -rf "$VTASK_DEV_DIR"' EXIT
gaps=()
for run in $(seq "$runs"); do
    scripts/dev.sh down >/dev/null
    rm -rf "${VTASK_DEV_DIR:?}"/node-*
    scripts/dev.sh up >/dev/null
    all=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
    leader=$("$vtask" --endpoints "$all" cluster status -o json | python3 -c '
import json, sys
for line in sys.stdin:
    s = json.loads(line)
    if s.get("leaderId"):
        print(s["leaderId"]); break')
    followers=$(for id in 1 2 3; do [ "$id" = "$leader" ] || printf '127.0.0.1:700%s,' "$id"; done)
    out=$(mktemp)
    "$vtask" --endpoints "${followers%,}" bench progress --clients "$clients" \
        --duration 10s --warmup 2s -o json >"$out" 2>"$out.err" &
    bench=$!
    sleep 6
    case "$fault" in
        transfer) "$vtask" --endpoints "$all" leader transfer >/dev/null ;;
        kill) kill -KILL "$(cat "$VTASK_DEV_DIR/node-$leader.pid")" ;;
    esac
    wait "$bench" || echo "run $run: bench exited $? (errors during the run)" >&2
    gap=$(python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).readline()); print(round(r["longestPauseMs"]), r["errors"], round(r["opsPerSec"]))' "$out")
    echo "run $run: leader n$leader, $fault: longest write pause ${gap% * *} ms (errors, ops/s: ${gap#* })"
    gaps+=("${gap%% *}")
    if [ "${gap#* }" != "0 ${gap##* }" ]; then
        python3 -c 'import json,sys; print("  first error:", json.loads(open(sys.argv[1]).readline())["firstError"])' "$out" >&2
    fi
    rm -f "$out" "$out.err"
done
median=$(printf '%s\n' "${gaps[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "$fault, C=$clients, $runs runs: median longest write pause $median ms (${gaps[*]})"
