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
echo "==> Kubernetes manifests (kubernetes-validate, strict)"
validator="$(dirname "${PALISADE_PYTHON:-/nonexistent/python}")/kubernetes-validate"
if [ -x "$validator" ]; then
  "$validator" --strict -k 1.30 config/kubernetes/*.yaml
else
  echo "skipped: kubernetes-validate not installed beside \$PALISADE_PYTHON (.ci/run installs it)"
fi
