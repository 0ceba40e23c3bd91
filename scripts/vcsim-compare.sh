#!/usr/bin/env bash
# Builds govmomi's simulator (vcsim) from Debian's golang-github-vmware-govmomi-dev
# with Debian's Go (GOPATH mode), starts it, and runs tests/soap/vcsim_compare.py
# (the pyVmomi cases of tests/soap) against it, printing what vcsim does in
# each: the reference the README's "vSphere clients" section compares with.
# Not part of `just test`: vcsim is a loose reference, not a specification.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null && [ -d /usr/share/gocode/src/github.com/vmware/govmomi ] ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q golang-go golang-github-vmware-govmomi-dev >/dev/null
sh scripts/setup.sh soap
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/src/vcsim"
cp tests/soap/vcsim/main.go "$work/src/vcsim/"
GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOCACHE="$work/cache" go build -o "$work/vcsim" vcsim
"$work/vcsim" >"$work/log" 2>&1 &
echo $! >"$work/pid"
for _ in $(seq 50); do curl -fs http://127.0.0.1:18989/about >/dev/null 2>&1 && break; grep -q 18989 "$work/log" && break; sleep 0.2; done
"${VTASK_VENV:-.venv}/bin/python" tests/soap/vcsim_compare.py
