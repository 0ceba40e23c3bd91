#!/usr/bin/env bash
# Checks the deploy files against the real tools that read them, as far as
# this machine allows (there is no Kubernetes cluster and no systemd as PID 1):
#  - deploy/k8s: every manifest, and the Secrets scripts/k8s-secrets.sh makes,
#    against the Kubernetes OpenAPI schemas (kubernetes-validate --strict,
#    from PyPI in the project's venv), and the StatefulSet's environment, as
#    pod vtask-1 would see it, through `vtaskd check-config`;
#  - deploy/systemd: `systemd-analyze verify` of the unit with the real
#    vtaskd binary, and `vtaskd check-config` of the example vtaskd.toml.
# Needs the debug build (just build).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
vtaskd="$(realpath "$target/debug/vtaskd")"
venv="${VTASK_VENV:-.venv}"
k8s_version=1.30.0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[ -x "$vtaskd" ] || { echo "deploy-check: no $vtaskd (run just build)" >&2; exit 1; }
sh scripts/setup.sh deploy
"$venv/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate==1.31.*'

echo "deploy-check: Kubernetes manifests (schemas of Kubernetes $k8s_version, strict)"
scripts/k8s-secrets.sh "$work/k8s" >/dev/null
manifests=()
for f in deploy/k8s/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
"$venv/bin/kubernetes-validate" --strict -k "$k8s_version" "${manifests[@]}" "$work/k8s/secrets.yaml"
# kustomization.yaml lists every manifest, and only those.
listed=$(sed -n 's/^  - \(.*\.yaml\)$/\1/p' deploy/k8s/kustomization.yaml | sort)
present=$(for f in "${manifests[@]}"; do basename "$f"; done | sort)
[ "$listed" = "$present" ] || {
    echo "deploy-check: kustomization.yaml lists [$listed], deploy/k8s has [$present]" >&2
    exit 1
}

echo "deploy-check: the StatefulSet's settings, as pod vtask-1 sees them"
# The container's env with $(POD_NAME) filled in and the Secret mounts
# pointed at the files k8s-secrets.sh made: the pod's own certificate name,
# the derived node id and the member list are checked by vtaskd itself.
"$venv/bin/python" - "$work" <<'PY' >"$work/pod.env"
import sys, yaml
work = sys.argv[1]
doc = yaml.safe_load(open("deploy/k8s/statefulset.yaml"))
container = doc["spec"]["template"]["spec"]["containers"][0]
env = {"POD_NAME": "vtask-1"}
for var in container["env"]:
    if "value" in var:
        value = var["value"].replace("$(POD_NAME)", env["POD_NAME"])
        value = value.replace("/etc/vtask/tls/", f"{work}/k8s/tls/")
        value = value.replace("/etc/vtask/users/", f"{work}/k8s/users/")
        value = value.replace("/var/lib/vtask", f"{work}/k8s/data")
        env[var["name"]] = value
for name, value in env.items():
    print(f"{name}={value}")
PY
out=$(env -i $(cat "$work/pod.env") "$vtaskd" check-config)
echo "  $out"
case "$out" in
    *"ok: node 2 of 1=vtask-0.vtask:7001,2=vtask-1.vtask:7001,3=vtask-2.vtask:7001, advertised as vtask-1.vtask:7001"*) ;;
    *) echo "deploy-check: pod vtask-1 is not node 2 advertised as vtask-1.vtask:7001" >&2; exit 1 ;;
esac

echo "deploy-check: systemd unit (systemd-analyze verify)"
unit="$work/systemd/vtaskd.service"
mkdir -p "$work/systemd"
sed "s#/usr/local/bin/vtaskd#$vtaskd#g" deploy/systemd/vtaskd.service >"$unit"
# verify loads the unit as systemd would and runs nothing; it exits non-zero
# on a bad directive or a missing executable. Its output must be empty too:
# systemd also merely warns about unknown settings.
log=$(systemd-analyze verify --man=no "$unit" 2>&1) || { echo "$log" >&2; exit 1; }
if [ -n "$log" ]; then
    echo "deploy-check: systemd-analyze verify has remarks:" >&2
    echo "$log" >&2
    exit 1
fi

echo "deploy-check: deploy/systemd/vtaskd.toml (vtaskd check-config)"
mkdir -p "$work/etc/tls"
VTASK_CERT_HOSTS='vtask-{id}.example.internal' scripts/certs.sh "$work/certs" 1 >/dev/null
cp "$work/certs/ca.pem" "$work/etc/tls/ca.pem"
cp "$work/certs/node-1.pem" "$work/etc/tls/node.pem"
cp "$work/certs/node-1-key.pem" "$work/etc/tls/node-key.pem"
cp "$work/k8s/users/users.toml" "$work/etc/users.toml"
cp "$work/k8s/users/session.key" "$work/etc/session.key"
sed -e "s#/etc/vtask/#$work/etc/#g" -e "s#/var/lib/vtask#$work/data#g" \
    deploy/systemd/vtaskd.toml >"$work/etc/vtaskd.toml"
out=$(env -i "$vtaskd" --config "$work/etc/vtaskd.toml" check-config)
echo "  $out"
case "$out" in
    *"ok: node 1 of "*", TLS, "*) ;;
    *) echo "deploy-check: vtaskd.toml is not node 1 with TLS" >&2; exit 1 ;;
esac
echo "deploy-check: passed (Kubernetes: schemas and settings only; no cluster ran them)"
