#!/usr/bin/env bash
# Debian packages the tests need besides PostgreSQL (scripts/setup-postgres.sh): the SMTP
# server the delivery tests talk to (aiosmtpd). Safe to run again; needs root.
set -euo pipefail
if ! /usr/bin/python3 -c "import aiosmtpd" >/dev/null 2>&1; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-aiosmtpd >&2
fi
