#!/usr/bin/env bash
# Proxy overhead against a direct connection to the same mock upstream,
# side by side in one run. Usage: scripts/load.sh [requests] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --release --example load -- "$@"
