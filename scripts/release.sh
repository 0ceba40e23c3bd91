#!/usr/bin/env bash
# Builds the optimized binaries users run (`cargo build --release`):
# $CARGO_TARGET_DIR/release/vtaskd and vtask.
#
# RocksDB's C++ takes ~25 minutes to compile here. The test profile already
# compiles it at -O3 without debug info, which is what a release build would
# do again, so when that archive exists the release build links it
# (librocksdb-sys' ROCKSDB_LIB_DIR + ROCKSDB_STATIC) instead of compiling it
# a second time; RocksDB's bindings are still generated from the same
# sources. Set VTASK_RELEASE_OWN_ROCKSDB=1 to compile it anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"

if [ "${VTASK_RELEASE_OWN_ROCKSDB:-0}" != 1 ]; then
    archive=$(ls -t "$target"/debug/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -1 || true)
    if [ -n "$archive" ]; then
        echo "release: linking RocksDB's C++ from the test profile's build ($archive)"
        export ROCKSDB_LIB_DIR ROCKSDB_STATIC=1
        ROCKSDB_LIB_DIR=$(dirname "$archive")
    else
        echo "release: no test-profile build of RocksDB found; compiling it (about 25 minutes on 2 cores)"
    fi
fi
cargo build --release -p vtaskd -p vtask-cli
ls -l "$target/release/vtaskd" "$target/release/vtask"
