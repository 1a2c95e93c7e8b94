#!/usr/bin/env bash
# Scale benchmark against DuckDB: scripts/bench-scale.sh [LINES ...] (default 1000000 10000000).
# Builds the engine, makes a virtual environment with DuckDB (from PyPI) under bench-data/,
# generates seeded data sets (CSV and Parquet) and prints the table (see scripts/bench_scale.py).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin payout --bin payout-generate
mkdir -p bench-data
if [ ! -x bench-data/.venv/bin/python ]; then
    python3 -m venv bench-data/.venv
    bench-data/.venv/bin/pip install -q duckdb
fi
exec bench-data/.venv/bin/python scripts/bench_scale.py "$@"
