#!/usr/bin/env sh
# Installs what a fresh machine lacks to build and test vtask: libclang (for
# RocksDB's bindings) and `just`. Safe to run again; it only installs what is
# missing. Needs root for apt-get (as on the project's machines).
set -eu

have() { command -v "$1" >/dev/null 2>&1; }

if ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 && ! ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
    echo "setup: installing libclang-dev (RocksDB bindings)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
fi

if ! have just; then
    echo "setup: installing just"
    # rust-just on PyPI ships the just binary; fall back to building it.
    if ! { python3 -m pip install -q rust-just && have just; }; then
        cargo install --locked just
    fi
fi

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

if ! have curl; then
    echo "setup: installing curl (used by scripts/dev.sh)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
fi
