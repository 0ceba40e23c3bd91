#!/usr/bin/env sh
# Installs what a fresh machine lacks to build and test vtask. Safe to run
# again: every step checks for the thing it needs (the file or command that is
# actually used, not a package that merely sounds like it) and installs only
# what is missing. Needs root for apt-get, as on the project's machines.
#
#   sh scripts/setup.sh            build and test needs (libclang, just, nextest, curl, openssl)
#   sh scripts/setup.sh docker     also Docker Engine and docker-compose, with dockerd
#                                  running (for `just image`, `just up` and the compose test)
#   sh scripts/setup.sh deploy     also the project's Python venv (${VTASK_VENV:-.venv}) and
#                                  systemd-analyze (for scripts/deploy-check.sh)
#   sh scripts/setup.sh python     also that venv with the Python client (clients/python,
#                                  editable) and its test tools (for scripts/python-test.sh)
#   sh scripts/setup.sh soap       also pyVmomi in that venv (for scripts/soap-test.sh)
#   sh scripts/setup.sh browser    also Debian's chromium and Node.js with npm (Node.js 20
#                                  from the npm registry when the machine's is older), for the
#                                  web view's browser test, scripts/ui-test.sh
set -eu

have() { command -v "$1" >/dev/null 2>&1; }

apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# bindgen (RocksDB's bindings) loads libclang through clang-sys, which looks
# for `libclang.so` or `libclang-<version>.so` in LIBCLANG_PATH, llvm-config's
# libdir and the system library directories. `libclang-cpp.so.*` (the C++ API,
# on the stock image) is not that library, and a bare `libclang.so.1` without
# the -dev package lacks clang's builtin headers that bindgen also needs.
libclang_found() {
    for dir in ${LIBCLANG_PATH:-} /usr/lib/llvm-*/lib /usr/lib /usr/lib64 /usr/local/lib \
        /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu; do
        for f in "$dir"/libclang.so "$dir"/libclang-[0-9]*.so; do
            [ -e "$f" ] && return 0
        done
    done
    return 1
}

if ! libclang_found; then
    echo "setup: installing libclang-dev (bindgen needs libclang.so for RocksDB's bindings)"
    apt_install libclang-dev
    libclang_found || { echo "setup: libclang-dev installed, still no libclang.so" >&2; exit 1; }
fi

if ! have g++; then
    echo "setup: installing g++ (RocksDB's C++)"
    apt_install g++
fi

if ! have just; then
    echo "setup: installing just"
    # rust-just on PyPI ships the just binary; fall back to building it.
    if ! { python3 -m pip install -q rust-just && hash -r && have just; }; then
        cargo install --locked just
    fi
fi

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

if ! have curl; then
    echo "setup: installing curl (used by scripts/dev.sh)"
    apt_install curl
fi

if ! have openssl; then
    echo "setup: installing openssl (scripts/certs.sh)"
    apt_install openssl
fi

# The project's Python venv, ${VTASK_VENV:-.venv}; sets $venv.
make_venv() {
    venv="${VTASK_VENV:-.venv}"
    if [ ! -x "$venv/bin/pip" ]; then
        echo "setup: creating the Python venv $venv"
        # Debian's python3 makes venvs only with python3-venv (ensurepip).
        python3 -m venv "$venv" 2>/dev/null || {
            rm -rf "$venv"
            apt_install python3-venv
            python3 -m venv "$venv"
        }
    fi
}

# The Python client (clients/python, editable) and its test tools, in $venv.
# Installed again only when clients/python/pyproject.toml (its dependencies
# and pins) changed since the last install into this venv.
install_python_client() {
    client="$(cd "$(dirname "$0")/.." && pwd)/clients/python"
    stamp="$venv/.vtask-python-client"
    want="$client $(cksum <"$client/pyproject.toml")"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] \
        || ! "$venv/bin/python" -c 'import vtask, grpc_tools, pytest, google.rpc.status_pb2' 2>/dev/null; then
        echo "setup: installing the Python client (clients/python) and its test tools into $venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$client[test]"
        printf '%s\n' "$want" >"$stamp"
    fi
}

case "${1:-}" in
docker) ;;
python)
    make_venv
    install_python_client
    exit 0
    ;;
soap)
    # tests/soap runs pyVmomi itself against the Python client tests' cluster.
    make_venv
    install_python_client
    reqs="$(cd "$(dirname "$0")/.." && pwd)/tests/soap/requirements.txt"
    stamp="$venv/.vtask-soap-tests"
    want="$(cksum <"$reqs")"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] \
        || ! "$venv/bin/python" -c 'import pyVmomi, pyVim.task, pytest' 2>/dev/null; then
        echo "setup: installing pyVmomi (tests/soap/requirements.txt) into $venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs"
        printf '%s\n' "$want" >"$stamp"
    fi
    exit 0
    ;;
browser)
    # The browser test drives Debian's own chromium (playwright-core with
    # executablePath=/usr/bin/chromium; no browser download) from Node.js.
    if [ ! -x /usr/bin/chromium ]; then
        echo "setup: installing chromium (the web view's browser test)"
        apt_install --no-install-recommends chromium fonts-liberation
    fi
    # The test runner's flags (`node --test --test-concurrency`) need
    # Node.js 20. The stock image has it; Debian 12's own nodejs is 18, so a
    # machine without it gets Node.js from the npm registry (the
    # node-linux-<arch> package holds the official binary) in
    # $VTASK_NODE_DIR/bin, which scripts/ui-test.sh puts first on PATH.
    node_dir="${VTASK_NODE_DIR:-$HOME/.cache/vtask/node}"
    node_version=20.20.2
    [ -x "$node_dir/bin/node" ] && PATH="$node_dir/bin:$PATH"
    if ! have node || ! have npm; then
        echo "setup: installing nodejs and npm (playwright-core drives the browser test)"
        apt_install nodejs npm
    fi
    node_major() { node -p 'process.versions.node.split(".")[0]'; }
    if [ "$(node_major)" -lt 20 ]; then
        case "$(uname -m)" in
        x86_64) arch=x64 ;;
        aarch64) arch=arm64 ;;
        *) echo "setup: no Node.js $node_version package for $(uname -m)" >&2; exit 1 ;;
        esac
        echo "setup: Node.js $(node --version) is too old for the browser test; installing Node.js $node_version (npm package node-linux-$arch) into $node_dir"
        fetched=$(mktemp -d)
        npm install --prefix "$fetched" --no-audit --no-fund --loglevel=error "node-linux-$arch@$node_version"
        mkdir -p "$node_dir/bin"
        cp "$fetched/node_modules/node-linux-$arch/bin/node" "$node_dir/bin/node"
        rm -rf "$fetched"
        PATH="$node_dir/bin:$PATH"
        if [ "$(node_major)" -lt 20 ]; then
            echo "setup: the browser test needs Node.js 20 or later; this is $(node --version)" >&2
            exit 1
        fi
    fi
    exit 0
    ;;
deploy)
    make_venv
    if ! have systemd-analyze; then
        echo "setup: installing systemd (systemd-analyze verify checks the unit)"
        apt_install systemd
    fi
    exit 0
    ;;
*) exit 0 ;;
esac

# The stock image has a docker client in /usr/local/bin but no engine:
# look for dockerd itself, not for `docker`.
if ! have dockerd; then
    echo "setup: installing docker.io (Docker Engine)"
    apt_install docker.io
fi
if ! docker compose version >/dev/null 2>&1 && ! have docker-compose; then
    echo "setup: installing docker-compose"
    apt_install docker-compose
fi
if ! docker info >/dev/null 2>&1; then
    echo "setup: starting dockerd (log in /var/log/dockerd.log)"
    # No init system runs services here: start the engine in the background.
    nohup dockerd >/var/log/dockerd.log 2>&1 &
    i=0
    until docker info >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -gt 60 ]; then
            echo "setup: dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
            tail -20 /var/log/dockerd.log >&2 || true
            exit 1
        fi
        sleep 1
    done
fi
