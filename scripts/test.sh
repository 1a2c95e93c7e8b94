#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and property tests, and the integration tests
# on SQLite and PostgreSQL and against a real SMTP server (installed and started here when
# missing; needs root for apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
if [ -z "${PAYOUT_TEST_POSTGRES_URL:-}" ]; then
    PAYOUT_TEST_POSTGRES_URL="$(scripts/setup-postgres.sh)"
fi
export PAYOUT_TEST_POSTGRES_URL

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --lib --bins --tests
