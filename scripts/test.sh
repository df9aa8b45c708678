#!/usr/bin/env bash
# The test command: formatting, lints, every test, and the shipped policies.
# Run from anywhere; it works in the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo fmt --check"
cargo fmt --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
echo "==> cargo test --all-targets"
cargo test --all-targets
echo "==> palisade policy check && palisade policy test"
cargo run --quiet -- policy check
cargo run --quiet -- policy test
