#!/usr/bin/env bash
# Makes a local CA and one certificate per node for a dev or test cluster:
#   scripts/certs.sh [DIR] [NODES]     (default .dev/certs, 3 nodes)
# DIR/ca.pem is the cluster CA (give it to clients: vtask --ca DIR/ca.pem);
# DIR/node-N.pem and DIR/node-N-key.pem are node N's certificate and key,
# valid for 127.0.0.1, localhost, vtask-node-N and node-N, for both server
# and client use (peers authenticate each other with them).
# VTASK_CERT_HOSTS adds DNS names, comma separated, in which {id} is the
# node's id and {ordinal} its id - 1 (a StatefulSet's pod number), e.g.
#   VTASK_CERT_HOSTS='vtask-{id}' (compose services), or
#   VTASK_CERT_HOSTS='vtask-{ordinal}.vtask,vtask-{ordinal}.vtask.default.svc.cluster.local'.
# The CA signs node certificates only: whoever holds one is a cluster member to the
# internal Raft service. Needs openssl. Keys are ECDSA P-256, PKCS#8.
set -euo pipefail

dir="${1:-.dev/certs}"
nodes="${2:-3}"
days=825
mkdir -p "$dir"
cd "$dir"
umask 077

if [ ! -f ca.pem ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca-key.pem 2>/dev/null
    openssl req -x509 -new -key ca-key.pem -sha256 -days "$days" -subj "/CN=vtask dev CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
fi
# ",DNS:name" for every name of VTASK_CERT_HOSTS, with {id} and {ordinal} filled in.
extra_sans() {
    local id=$1 name
    [ -n "${VTASK_CERT_HOSTS:-}" ] || return 0
    IFS=, read -ra names <<<"$VTASK_CERT_HOSTS"
    for name in "${names[@]}"; do
        name=${name//\{id\}/$id}
        name=${name//\{ordinal\}/$((id - 1))}
        printf ',DNS:%s' "$name"
    done
}

for id in $(seq 1 "$nodes"); do
    [ -f "node-$id.pem" ] && continue
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "node-$id-key.pem" 2>/dev/null
    openssl req -new -key "node-$id-key.pem" -subj "/CN=vtask-node-$id" -out "node-$id.csr"
    cat >"node-$id.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:vtask-node-$id,DNS:node-$id$(extra_sans "$id")
EXT
    openssl x509 -req -in "node-$id.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
        -days "$days" -sha256 -extfile "node-$id.ext" -out "node-$id.pem" 2>/dev/null
    rm -f "node-$id.csr" "node-$id.ext"
done
chmod 644 ca.pem node-*.pem
chmod 600 ca-key.pem node-*-key.pem
echo "certificates in $dir: ca.pem, node-{1..$nodes}.pem (+ -key.pem)"
