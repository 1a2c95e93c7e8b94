#!/usr/bin/env bash
# Statements and email throughput (issue 14): scripts/bench-statements.sh [PARTNERS] (default
# 100000). Builds the engine (or uses PAYOUT_BIN_DIR's payout and payout-generate, no build),
# starts Postfix's smtp-sink on a free loopback port (installs Debian's postfix package when
# smtp-sink is missing and this runs as root with apt-get; never starts the postfix service),
# then times `payout close` and `payout send` on 1 and 4 connections against it, and
# smtp-source against the same sink as the loopback ceiling (see scripts/bench_statements.py).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PAYOUT_BIN_DIR:-}" ]; then
    for bin in payout payout-generate; do
        [ -x "$PAYOUT_BIN_DIR/$bin" ] || { echo "PAYOUT_BIN_DIR=$PAYOUT_BIN_DIR has no $bin" >&2; exit 1; }
    done
else
    cargo build --release --bin payout --bin payout-generate
fi

find_tool() { command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || true; }
SMTP_SINK=$(find_tool smtp-sink)
SMTP_SOURCE=$(find_tool smtp-source)
if [ -z "$SMTP_SINK" ] || [ -z "$SMTP_SOURCE" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        # "No configuration": the package's tools only, no mail server configured or started.
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
        DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
        SMTP_SINK=$(find_tool smtp-sink)
        SMTP_SOURCE=$(find_tool smtp-source)
    fi
    if [ -z "$SMTP_SINK" ] || [ -z "$SMTP_SOURCE" ]; then
        echo "smtp-sink and smtp-source are needed: sudo apt-get install postfix (Debian/Ubuntu)" >&2
        exit 1
    fi
fi

mkdir -p bench-data
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Accepts every message and discards it; as root it must drop to an unprivileged user.
sink_user=()
[ "$(id -u)" = 0 ] && sink_user=(-u nobody)
"$SMTP_SINK" "${sink_user[@]}" "127.0.0.1:$PORT" 256 >bench-data/.smtp-sink.log 2>&1 &
SINK_PID=$!
cleanup() { kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$SINK_PID" 2>/dev/null || { cat bench-data/.smtp-sink.log >&2; echo "smtp-sink did not start" >&2; exit 1; }
    sleep 0.1
done

BENCH_SMTP_PORT=$PORT BENCH_SMTP_SINK_PID=$SINK_PID BENCH_SMTP_SOURCE=$SMTP_SOURCE \
    python3 scripts/bench_statements.py "$@"
