# vtask developer commands. On a fresh machine run `sh scripts/setup.sh` once
# (it installs libclang, just and cargo-nextest); `just --list` shows them all.
#
# Every recipe builds with the same command (`cargo build --workspace
# --all-targets`), so Cargo resolves one feature set and RocksDB's C++ is
# compiled once per target directory, not once per recipe.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Build everything: binaries, libraries and tests.
build:
    cargo build --workspace --all-targets

# Build, start a local three-node cluster (ports 7001-7003, 9001-9003, data in .dev/) and show it working.
dev: build
    scripts/dev.sh up

# A local CA and node certificates (openssl) in DIR for a TLS cluster; `just dev` makes its own in .dev/certs.
certs dir=".dev/certs" nodes="3":
    scripts/certs.sh {{dir}} {{nodes}}

# Stop the local cluster started by `just dev`.
dev-down:
    scripts/dev.sh down

# Build everything and run the whole test suite: model, wire, store and real-cluster tests, the Python client's tests, pyVmomi against /sdk, the web view in a browser, a chaos run, the compose cluster under faults, and the deploy files' checks.
test: build
    cargo nextest run --workspace --no-fail-fast
    just python-test
    just soap-test
    scripts/googleapis-protos.sh --check
    just ui-test
    just chaos --duration 3m --faults kill,stop,partition,member,transfer --interval 5s --min-operations 2000
    just compose-test
    just deploy-check

# The optimized binaries users run, in $CARGO_TARGET_DIR/release (reuses the test profile's RocksDB build when there is one).
release:
    scripts/release.sh

# The container image vtask:<version>, FROM scratch: `just image` from the release build, `just image debug` from the test profile's.
image profile="release":
    sh scripts/setup.sh docker
    {{ if profile == "release" { "scripts/release.sh" } else { "cargo build --workspace --all-targets" } }}
    scripts/image.sh {{profile}}

# Start the three-node compose cluster of deploy/compose.yaml (TLS, a token; needs `just image`) and print its endpoints.
up:
    sh scripts/setup.sh docker
    scripts/compose.sh up

# Stop the compose cluster (`just down --volumes` also drops its data).
down *args:
    scripts/compose.sh down {{args}}

# The compose cluster under faults: leader kill, network disconnect, rolling restart; 0 acknowledged writes lost, digests equal.
compose-test profile="debug": build
    sh scripts/setup.sh docker
    scripts/compose-test.sh {{profile}}

# Validate the Kubernetes manifests (schema, strict) and the systemd unit (systemd-analyze verify).
deploy-check: build
    scripts/deploy-check.sh

# The Python client's tests (clients/python) against a real 3-node TLS cluster; sets up the venv (`sh scripts/setup.sh python`).
python-test *args: build
    scripts/python-test.sh {{args}}

# pyVmomi itself (tests/soap) against the vSphere SOAP door (/sdk) of a real 3-node TLS cluster with password logins (`sh scripts/setup.sh soap`).
soap-test *args: build
    scripts/soap-test.sh {{args}}

# The web view (/ui) in Debian's headless chromium (playwright-core) against a real 3-node TLS cluster; screenshots in $CARGO_TARGET_DIR/ui-screenshots (`sh scripts/setup.sh browser`).
ui-test *args: build
    scripts/ui-test.sh {{args}}

# Fault injection against a fresh local cluster, then the history check; exit 1 on any anomaly (see README, Chaos testing).
chaos *args: build
    "${CARGO_TARGET_DIR:-target}/debug/vtask" chaos --history "${CARGO_TARGET_DIR:-target}/chaos-history.json" {{args}}

# Formatting and lints, as CI-clean code needs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Benchmark a fresh local 3-node vtask cluster: progress and get at 1, 16, 64, 256 clients (BENCH_* env, see the script).
bench *args: release
    scripts/bench.sh {{args}}

# The same benchmark against a 3-member etcd 3.4 on loopback (installs etcd-server/etcd-client from apt if missing).
bench-etcd *args: release
    scripts/bench-etcd.sh {{args}}

# Both, one after the other on this machine: the vtask vs etcd table of issue #6.
bench-compare *args: release
    scripts/bench.sh {{args}}
    scripts/bench-etcd.sh {{args}}

# Install what a fresh machine lacks (libclang, just, cargo-nextest, curl, openssl; `just setup docker` adds Docker).
setup *what:
    sh scripts/setup.sh {{what}}
