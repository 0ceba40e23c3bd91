#!/usr/bin/env bash
# Starts (`up`) or stops (`down`) a local three-node vtask cluster:
# gRPC on 127.0.0.1:7001-7003, HTTP (/metrics, /health, /status) on
# 127.0.0.1:9001-9003, data and logs under $VTASK_DEV_DIR (default ./.dev).
# Authentication is on: `up` makes a fresh admin token, writes its hash to
# $dir/users.toml and the token to $dir/admin.token, and prints it.
# With openssl, the nodes talk TLS (certificates from scripts/certs.sh in
# $dir/certs; peers mutually authenticated); without it, plain text.
# VTASK_DEV_INSECURE=1 starts the nodes with --insecure instead (no auth, no TLS).
# VTASK_PROFILE=release runs the optimized build (scripts/release.sh) instead of
# the test profile's (debug, the default).
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${VTASK_DEV_DIR:-$PWD/.dev}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
profile="${VTASK_PROFILE:-debug}"
bin="$target/$profile"
cluster="1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003"

down() {
    for id in 1 2 3; do
        pidfile="$dir/node-$id.pid"
        if [ -f "$pidfile" ]; then
            pid=$(cat "$pidfile")
            if kill -0 "$pid" 2>/dev/null; then
                kill -TERM "$pid"
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
                echo "stopped node $id (pid $pid)"
            fi
            rm -f "$pidfile"
        fi
    done
}

up() {
    case "$profile" in
    debug) [ -x "$bin/vtaskd" ] || cargo build --workspace --all-targets ;;
    release) [ -x "$bin/vtaskd" ] || scripts/release.sh ;;
    *) echo "VTASK_PROFILE is debug or release, not $profile" >&2; exit 2 ;;
    esac
    mkdir -p "$dir"
    down >/dev/null
    vtaskd="$bin/vtaskd"
    if [ "${VTASK_DEV_INSECURE:-0}" = 1 ]; then
        auth=(--insecure)
        unset VTASK_TOKEN VTASK_CA
    else
        # The token file is the only copy of the secret: readable by us alone.
        (umask 077; "$vtaskd" new-token >"$dir/admin.token")
        export VTASK_TOKEN
        VTASK_TOKEN=$(cat "$dir/admin.token")
        # The admin's password, for vSphere clients (pyVmomi) at /sdk.
        (umask 077; "$vtaskd" new-token | cut -c1-24 >"$dir/admin.password")
        scripts/users.sh "$(printf '%s\n' "$VTASK_TOKEN" | "$vtaskd" hash-token)" "scripts/dev.sh up" \
            "$("$vtaskd" hash-password <"$dir/admin.password")" >"$dir/users.toml"
        # vSphere SOAP session cookies are signed with this key, the same on
        # every node, so a pyVmomi session works on any node.
        (umask 077; "$vtaskd" new-token >"$dir/session.key")
        auth=(--auth-file "$dir/users.toml" --session-key-file "$dir/session.key")
        if command -v openssl >/dev/null; then
            scripts/certs.sh "$dir/certs" 3 >/dev/null
            export VTASK_CA="$dir/certs/ca.pem"
        else
            echo "openssl not found: the dev cluster serves plain text" >&2
            auth+=(--plaintext)
        fi
    fi
    # Three nodes share this machine: one async worker thread each (unless
    # VTASKD_WORKER_THREADS says otherwise) spends less CPU on waking threads.
    export VTASKD_WORKER_THREADS="${VTASKD_WORKER_THREADS:-1}"
    for id in 1 2 3; do
        tls=()
        if [ -n "${VTASK_CA:-}" ]; then
            tls=(--tls-cert "$dir/certs/node-$id.pem" --tls-key "$dir/certs/node-$id-key.pem" --tls-ca "$VTASK_CA")
        fi
        "$vtaskd" "${auth[@]}" "${tls[@]}" --node-id "$id" --listen "127.0.0.1:700$id" --http "127.0.0.1:900$id" \
            --data-dir "$dir/node-$id" --initial-cluster "$cluster" >"$dir/node-$id.log" 2>&1 &
        echo $! >"$dir/node-$id.pid"
    done
    for _ in $(seq 100); do
        if curl -fs http://127.0.0.1:9001/health >/dev/null 2>&1; then break; fi
        sleep 0.1
    done
    echo
    echo "vtask dev cluster is up (data and logs in $dir):"
    for id in 1 2 3; do
        echo "  node $id: grpc 127.0.0.1:700$id   http http://127.0.0.1:900$id/metrics  pid $(cat "$dir/node-$id.pid")"
    done
    # The web view is on every node's HTTP port, over TLS when the node runs TLS.
    if [ -n "${VTASK_CA:-}" ]; then
        echo "  web view: https://127.0.0.1:9001/ui (any node's port; sign in with the admin token; the browser must trust $VTASK_CA)"
    else
        echo "  web view: http://127.0.0.1:9001/ui (any node's port)"
    fi
    echo
    export VTASK_ENDPOINTS=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
    vtask="$bin/vtask"
    echo "\$ vtask cluster status"
    "$vtask" cluster status
    echo "\$ vtask create --type-id com.example.backup --entity VirtualMachine:vm-42 --cancelable"
    key=$("$vtask" create --type-id com.example.backup --entity VirtualMachine:vm-42 --cancelable -o key)
    echo "$key"
    echo "\$ vtask start $key && vtask progress $key 60"
    "$vtask" start "$key" >/dev/null
    "$vtask" progress "$key" 60 >/dev/null
    echo "\$ vtask get $key"
    "$vtask" get "$key"
    echo
    if [ -n "${VTASK_TOKEN:-}" ]; then
        echo "admin token (also in $dir/admin.token; users in $dir/users.toml, reloaded on SIGHUP):"
        echo "  export VTASK_TOKEN=$VTASK_TOKEN"
        [ -n "${VTASK_CA:-}" ] && echo "  export VTASK_CA=$VTASK_CA   # TLS: the dev CA (scripts/certs.sh)"
        echo "vSphere clients (pyVmomi) at /sdk on any HTTP port: user admin, password $(cat "$dir/admin.password") (also in $dir/admin.password)"
    else
        echo "INSECURE: authentication is off (VTASK_DEV_INSECURE=1)"
    fi
    echo "Try: export VTASK_ENDPOINTS=$VTASK_ENDPOINTS; $vtask --help"
    echo "Stop with: just dev-down"
}

case "${1:-up}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
