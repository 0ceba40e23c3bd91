#!/usr/bin/env bash
# Runs tests/soap (pyVmomi itself) against a fresh local 3-node --insecure
# cluster over plain HTTP: venv ${VTASK_VENV:-.venv} with pyvmomi and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VTASK_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import pyVmomi, pytest" 2>/dev/null || "$venv/bin/pip" install -q pyvmomi pytest
target="${CARGO_TARGET_DIR:-$PWD/target}"
[ -x "$target/debug/vtaskd" ] || cargo build -p vtaskd
dir=$(mktemp -d)
base=$((20000 + RANDOM % 20000))
cluster="1=127.0.0.1:$((base+1)),2=127.0.0.1:$((base+2)),3=127.0.0.1:$((base+3))"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$dir"' EXIT
for i in 1 2 3; do
    "$target/debug/vtaskd" --insecure --node-id $i --listen 127.0.0.1:$((base+i)) --http 127.0.0.1:$((base+10+i)) \
        --data-dir "$dir/n$i" --initial-cluster "$cluster" >"$dir/n$i.log" 2>&1 &
    pids+=($!)
done
for _ in $(seq 100); do curl -fs http://127.0.0.1:$((base+11))/health >/dev/null 2>&1 && break; sleep 0.1; done
export VTASK_SOAP_PORTS="$((base+11)),$((base+12)),$((base+13))"
"$venv/bin/python" -m pytest -q tests/soap "$@"
