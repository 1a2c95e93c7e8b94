#!/usr/bin/env bash
# History benchmark: scripts/bench-history.sh [LINES_PER_MONTH] (default 1000000).
# Builds the engine, then runs and closes twelve months of LINES_PER_MONTH lines each on one
# SQLite store, runs a thirteenth, and prints its run time and peak RSS against the first
# month's (see scripts/bench_history.py).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin payout --bin payout-generate
mkdir -p bench-data
exec python3 scripts/bench_history.py "$@"
