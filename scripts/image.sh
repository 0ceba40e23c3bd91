#!/usr/bin/env bash
# Builds the container image vtask:<version> (or $VTASK_IMAGE) from nothing
# that needs a registry: `FROM scratch` plus a root filesystem assembled
# here from the built binaries, the shared libraries `ldd` names, CA
# certificates, a passwd entry for the non-root user and the data directory.
#
#   scripts/image.sh [release|debug]
#
# release (default, `just image`): the optimized build of scripts/release.sh.
# debug: the test profile's binaries, which the compose test in .ci/run uses
# so that CI compiles the workspace once; same image otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${1:-release}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
bin="$target/$profile"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
image="${VTASK_IMAGE:-vtask:$version}"
for b in vtaskd vtask; do
    if [ ! -x "$bin/$b" ]; then
        echo "image: $bin/$b is missing; build it first (just release, or just build for debug)" >&2
        exit 1
    fi
done

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
root="$context/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/var/lib" "$root/tmp"
# The data directory comes in a second COPY with --chown (see deploy/Dockerfile).
mkdir -p "$context/data/vtask"
for b in vtaskd vtask; do
    # Symbols are for debuggers, not for a deployed image.
    strip -o "$root/usr/local/bin/$b" "$bin/$b"
done

# Every shared library the binaries load, at the path the loader expects,
# and the loader itself.
ldd "$bin/vtaskd" "$bin/vtask" |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && NF > 1 { print $1 }' |
    sort -u |
    while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done

# Clients of the nodes may use public CAs; the cluster's own CA comes as a file.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
fi
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
vtask:x:10001:10001:vtask:/var/lib/vtask:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
vtask:x:10001:
GROUP
# glibc's resolver: /etc/hosts first (Docker writes it), then DNS.
echo "hosts: files dns" >"$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"

cp deploy/Dockerfile "$context/Dockerfile"
docker build --quiet --build-arg "VERSION=$version" -t "$image" "$context" >/dev/null
size=$(docker image inspect --format '{{.Size}}' "$image")
echo "image: built $image from $profile binaries, $((size / 1024 / 1024)) MiB ($size bytes)"
