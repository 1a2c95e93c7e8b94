#!/usr/bin/env bash
# Installs PostgreSQL from Debian if needed, starts the cluster and creates the test role and
# database. Prints the admin URL the tests use (PAYOUT_TEST_POSTGRES_URL); each test creates
# its own database from it. Safe to run again.
set -euo pipefail

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" && $4 == "online"' | grep -q .; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2
fi
for _ in $(seq 1 30); do
    pg_isready -q -h localhost && break
    sleep 1
done
psql_admin() { su postgres -c "psql -v ON_ERROR_STOP=1 -qtA -c \"$1\""; }
if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = 'payout'")" != "1" ]; then
    psql_admin "CREATE ROLE payout LOGIN CREATEDB PASSWORD 'payout'" >&2
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = 'payout_test'")" != "1" ]; then
    psql_admin "CREATE DATABASE payout_test OWNER payout" >&2
fi
echo "postgres://payout:payout@localhost:5432/payout_test"
