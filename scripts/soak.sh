#!/usr/bin/env bash
# Soak run: the release `palisade` binary in its own process under mixed
# load (allowed, refused, streamed, cut mid-stream) with a policy reload every
# 30 s. Prints one row per minute (requests, errors, refusals, cuts, p50/p99,
# RSS, reloads) and PASS/FAIL verdicts; exits non-zero on a FAIL.
# Usage: scripts/soak.sh [minutes] [requests-per-second]   (default 10, 100)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --bin palisade --example soak
exec target/release/examples/soak --minutes "${1:-10}" --rate "${2:-100}"
