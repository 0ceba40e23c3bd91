#!/usr/bin/env bash
# Makes a local CA and one certificate per node for a dev or test cluster:
#   scripts/certs.sh [DIR] [NODES]     (default .dev/certs, 3 nodes)
# DIR/ca.pem is the cluster CA (give it to clients: vtask --ca DIR/ca.pem);
# DIR/node-N.pem and DIR/node-N-key.pem are node N's certificate and key,
# valid for 127.0.0.1, localhost, vtask-node-N and node-N, for both server
# and client use (peers authenticate each other with them). The CA signs
# node certificates only: whoever holds one is a cluster member to the
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
for id in $(seq 1 "$nodes"); do
    [ -f "node-$id.pem" ] && continue
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "node-$id-key.pem" 2>/dev/null
    openssl req -new -key "node-$id-key.pem" -subj "/CN=vtask-node-$id" -out "node-$id.csr"
    cat >"node-$id.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:vtask-node-$id,DNS:node-$id
EXT
    openssl x509 -req -in "node-$id.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
        -days "$days" -sha256 -extfile "node-$id.ext" -out "node-$id.pem" 2>/dev/null
    rm -f "node-$id.csr" "node-$id.ext"
done
chmod 644 ca.pem node-*.pem
chmod 600 ca-key.pem node-*-key.pem
echo "certificates in $dir: ca.pem, node-{1..$nodes}.pem (+ -key.pem)"
