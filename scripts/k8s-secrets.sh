#!/usr/bin/env bash
# The two Secrets deploy/k8s expects, made locally:
#   scripts/k8s-secrets.sh [DIR]        (default .k8s; NAMESPACE env, default "default")
# DIR/tls/: the cluster CA (ca.pem, and ca-key.pem, which stays here) and pod
#   vtask-N's certificate vtask-N.pem + vtask-N-key.pem, valid for
#   vtask-N.vtask, vtask-N.vtask.NAMESPACE.svc(.cluster.local), the client
#   Service's names, localhost and 127.0.0.1;
# DIR/users/users.toml: one admin user, whose token is in DIR/admin.token;
# DIR/users/session.key: the key that signs vSphere SOAP session cookies;
# DIR/secrets.yaml: Secrets vtask-tls and vtask-users, for `kubectl apply -f`.
# Needs openssl. Run it again to add nothing: existing files are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${1:-.k8s}"
ns="${NAMESPACE:-default}"
mkdir -p "$dir/tls" "$dir/users"

names='vtask-{ordinal}.vtask,vtask-{ordinal}.vtask.'"$ns"'.svc,vtask-{ordinal}.vtask.'"$ns"'.svc.cluster.local'
names+=',vtask-client,vtask-client.'"$ns"'.svc,vtask-client.'"$ns"'.svc.cluster.local'
VTASK_CERT_HOSTS="$names" scripts/certs.sh "$dir/certs" 3 >/dev/null
cp "$dir/certs/ca.pem" "$dir/tls/ca.pem"
for id in 1 2 3; do
    pod="vtask-$((id - 1))"
    cp "$dir/certs/node-$id.pem" "$dir/tls/$pod.pem"
    cp "$dir/certs/node-$id-key.pem" "$dir/tls/$pod-key.pem"
done

if [ ! -f "$dir/users/users.toml" ]; then
    (umask 077; openssl rand -hex 32 >"$dir/admin.token")
    # vtaskd hash-token: the SHA-256 of the token's bytes, in hex.
    hash=$(printf %s "$(cat "$dir/admin.token")" | openssl dgst -sha256 -r | cut -d' ' -f1)
    scripts/users.sh "$hash" scripts/k8s-secrets.sh >"$dir/users/users.toml"
fi
# Signs vSphere SOAP session cookies; every pod reads the same one.
[ -f "$dir/users/session.key" ] || (umask 077; openssl rand -hex 32 >"$dir/users/session.key")

# A Secret's data: every file of a directory, base64 on one line.
secret() {
    local name=$1 from=$2 f
    printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n' "$name" "$ns"
    printf '  labels:\n    app.kubernetes.io/name: vtask\ntype: Opaque\ndata:\n'
    for f in "$from"/*; do
        printf '  %s: %s\n' "$(basename "$f")" "$(base64 -w0 <"$f")"
    done
}
(umask 077; { secret vtask-tls "$dir/tls"; echo ---; secret vtask-users "$dir/users"; } >"$dir/secrets.yaml")
echo "k8s: $dir/secrets.yaml (Secrets vtask-tls, vtask-users in namespace $ns); admin token in $dir/admin.token; CA in $dir/tls/ca.pem"
