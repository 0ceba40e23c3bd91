#!/usr/bin/env bash
# The compose cluster of deploy/compose.yaml:
#   scripts/compose.sh secrets   make deploy/secrets/ (CA, node certificates, users file, admin token) if missing
#   scripts/compose.sh up        secrets, then start the three nodes, wait until healthy, print endpoints and exports
#   scripts/compose.sh down      stop and remove the containers; add --volumes to drop the data too
# Needs the image (`just image`) and Docker with docker-compose or `docker compose`.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
export VTASK_IMAGE="${VTASK_IMAGE:-vtask:$version}"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-vtask}"
# Absolute: compose.yaml resolves relative paths against its own directory.
export VTASK_SECRETS="${VTASK_SECRETS:-$PWD/deploy/secrets}"
export VTASK_GRPC_PORTS="${VTASK_GRPC_PORTS:-710}" VTASK_HTTP_PORTS="${VTASK_HTTP_PORTS:-910}"
secrets=$VTASK_SECRETS

compose() {
    if docker compose version >/dev/null 2>&1; then
        docker compose -f deploy/compose.yaml "$@"
    else
        docker-compose -f deploy/compose.yaml "$@"
    fi
}

make_secrets() {
    if [ -f "$secrets/users.toml" ]; then
        # Secrets made before the SOAP door had no session key: add one.
        if [ ! -f "$secrets/session.key" ]; then
            (umask 077; docker run --rm "$VTASK_IMAGE" new-token >"$secrets/session.key")
            chown 10001:10001 "$secrets/session.key"
            chmod 0400 "$secrets/session.key"
        fi
        return 0
    fi
    mkdir -p "$secrets"
    VTASK_CERT_HOSTS='vtask-{id}' scripts/certs.sh "$secrets" 3 >/dev/null
    rm -f "$secrets/ca-key.pem.srl" "$secrets/ca.srl"
    # The image makes the token and its hash, so no host build is needed.
    (umask 077; docker run --rm "$VTASK_IMAGE" new-token >"$secrets/admin.token")
    hash=$(docker run --rm "$VTASK_IMAGE" hash-token "$(cat "$secrets/admin.token")")
    scripts/users.sh "$hash" scripts/compose.sh >"$secrets/users.toml"
    (umask 077; docker run --rm "$VTASK_IMAGE" new-token >"$secrets/session.key")
    # Compose bind-mounts secret files as they are: the node runs as uid
    # 10001, which must read its key and the users file, and nobody else.
    chown 10001:10001 "$secrets"/node-*-key.pem "$secrets/users.toml" "$secrets/session.key"
    chmod 0400 "$secrets"/node-*-key.pem "$secrets/users.toml" "$secrets/session.key"
    echo "compose: secrets in $secrets (CA key in $secrets/ca-key.pem: keep it off the nodes)"
}

# Waits until every node's container reports healthy.
wait_healthy() {
    local deadline=$((SECONDS + ${1:-120})) id cid state
    for id in 1 2 3; do
        cid=$(compose ps -q "vtask-$id")
        while :; do
            state=$(docker inspect --format '{{.State.Health.Status}}' "$cid" 2>/dev/null || echo missing)
            [ "$state" = healthy ] && break
            if [ $SECONDS -ge $deadline ]; then
                echo "compose: vtask-$id is $state after ${1:-120} s; its log:" >&2
                docker logs --tail 30 "$cid" >&2 || true
                return 1
            fi
            sleep 1
        done
    done
}

endpoints() {
    echo "127.0.0.1:${VTASK_GRPC_PORTS}1,127.0.0.1:${VTASK_GRPC_PORTS}2,127.0.0.1:${VTASK_GRPC_PORTS}3"
}

up() {
    make_secrets
    compose up -d
    wait_healthy 120
    echo
    echo "vtask compose cluster is up ($VTASK_IMAGE, project $COMPOSE_PROJECT_NAME):"
    for id in 1 2 3; do
        echo "  vtask-$id: grpc 127.0.0.1:$VTASK_GRPC_PORTS$id   http http://127.0.0.1:$VTASK_HTTP_PORTS$id/metrics"
    done
    echo
    echo "export VTASK_ENDPOINTS=$(endpoints)"
    echo "export VTASK_TOKEN=$(cat "$secrets/admin.token")"
    echo "export VTASK_CA=$secrets/ca.pem"
    echo "Stop with: just down"
}

case "${1:-up}" in
    secrets) make_secrets ;;
    up) up ;;
    down) shift; compose down "$@" ;;
    wait) wait_healthy "${2:-120}" ;;
    endpoints) endpoints ;;
    compose) shift; compose "$@" ;;
    *) echo "usage: $0 secrets|up|down [--volumes]|wait [SECONDS]|endpoints|compose ARGS..." >&2; exit 2 ;;
esac
