#!/usr/bin/env bash
# The yardstick of issue #6: a three-member etcd 3.4 cluster on loopback
# (Debian's etcd-server, default durability: every write fsynced on a
# majority), loaded by `vtask bench --target etcd` with the workloads that
# match vtask's (puts of 150 bytes to one key per client; linearizable and
# serializable gets), at each client count. Stops etcd and removes its data
# when done, also on failure or Ctrl-C.
#
# Usage: scripts/bench-etcd.sh [extra vtask bench flags...]
# Environment: BENCH_WORKLOADS (default progress,get), BENCH_CLIENTS
# (default 1,16,64,256), BENCH_DURATION (10s), BENCH_WARMUP (2s).
# Ports: clients 127.0.0.1:12379/22379/32379, peers 12380/22380/32380, clear
# of vtask's dev cluster (7001-7003, 9001-9003) and of etcd's defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$PWD/target}"
# The load generator is the release build (scripts/release.sh), as on
# vtask's side (scripts/bench.sh).
vtask="$target/release/vtask"
workloads="${BENCH_WORKLOADS:-progress,get}"
clients="${BENCH_CLIENTS:-1,16,64,256}"
duration="${BENCH_DURATION:-10s}"
warmup="${BENCH_WARMUP:-2s}"

if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    echo "installing etcd 3.4 (etcd-server, etcd-client) from apt" >&2
    apt-get update -qq
    # policy-rc.d on Debian images keeps the packaged service from starting;
    # this script runs its own members either way.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >/dev/null
fi
[ -x "$vtask" ] || scripts/release.sh

dir=$(mktemp -d -t vtask-bench-etcd.XXXXXX)
pids=()
stop() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap stop EXIT

cluster="m1=http://127.0.0.1:12380,m2=http://127.0.0.1:22380,m3=http://127.0.0.1:32380"
endpoints="127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379"
for i in 1 2 3; do
    etcd --name "m$i" --data-dir "$dir/m$i" \
        --listen-client-urls "http://127.0.0.1:${i}2379" \
        --advertise-client-urls "http://127.0.0.1:${i}2379" \
        --listen-peer-urls "http://127.0.0.1:${i}2380" \
        --initial-advertise-peer-urls "http://127.0.0.1:${i}2380" \
        --initial-cluster "$cluster" --initial-cluster-token vtask-bench \
        --initial-cluster-state new \
        --logger zap --log-outputs stderr >"$dir/m$i.log" 2>&1 &
    pids+=($!)
done

for _ in $(seq 100); do
    if ETCDCTL_API=3 etcdctl --endpoints "$endpoints" endpoint health >/dev/null 2>&1; then
        break
    fi
    sleep 0.2
done
if ! ETCDCTL_API=3 etcdctl --endpoints "$endpoints" endpoint health; then
    echo "etcd did not become healthy; logs in $dir" >&2
    trap - EXIT
    exit 1
fi
ETCDCTL_API=3 etcdctl --endpoints "$endpoints" endpoint status -w table

server_pids=$(IFS=,; echo "${pids[*]}")
"$vtask" bench --target etcd --endpoints "$endpoints" --server-pids "$server_pids" \
    "$workloads" --clients "$clients" --duration "$duration" --warmup "$warmup" "$@"
