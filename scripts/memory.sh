#!/usr/bin/env bash
# Memory: RSS of the release `palisade` binary idle with policies/default.yaml,
# then with N streamed answers open at once against a slowly streaming mock
# (each stream lasts about 20 s). Usage: scripts/memory.sh [streams] (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --bin palisade --example soak
exec target/release/examples/soak --memory --streams "${1:-1000}"
