#!/usr/bin/env bash
# Debian packages the tests need besides PostgreSQL (scripts/setup-postgres.sh): the SMTP
# server the delivery tests talk to (aiosmtpd), pdfinfo (poppler-utils: the tagged-PDF check)
# and openssl (the STARTTLS test makes its CA and server certificate). Safe to run again;
# needs root.
set -euo pipefail
missing=()
/usr/bin/python3 -c "import aiosmtpd" >/dev/null 2>&1 || missing+=(python3-aiosmtpd)
command -v pdfinfo >/dev/null 2>&1 || missing+=(poppler-utils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
