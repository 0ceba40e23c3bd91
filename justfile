# vtask developer commands. Run `sh scripts/setup.sh` once on a fresh machine
# (it installs libclang and just); `just --list` shows every recipe.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Build everything and run the whole test suite (unit, model, and real-cluster tests).
test:
    cargo build --workspace --bins
    cargo nextest run --workspace --no-fail-fast

# Formatting and lints, as CI-clean code needs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Install what a fresh machine lacks (libclang, just, cargo-nextest).
setup:
    sh scripts/setup.sh
