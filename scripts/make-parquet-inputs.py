#!/usr/bin/env python3
"""Writes tests/inputs/parquet/: revenue files as DuckDB, pyarrow and polars write them (DECIMAL
amounts, integer ids of every width, dictionary, view and date columns), for the Parquet reader
tests (tests/parquet_inputs.rs). Run once by hand to regenerate; the files are committed:

    python3 -m venv /tmp/pq && /tmp/pq/bin/pip install duckdb pyarrow polars
    /tmp/pq/bin/python scripts/make-parquet-inputs.py
"""
import datetime
import decimal
import pathlib

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "inputs" / "parquet"
OUT.mkdir(parents=True, exist_ok=True)
D = decimal.Decimal

# Partner 1000001 (USD, csp-indirect, azure 0.06 from 2026-10) and 1000006 of the fixtures.
ROWS = [
    ("PQ-1", 1000001, 501, "azure", "2026-10", D("1000.50"), "USD"),
    ("PQ-2", 1000001, 502, "azure", "2026-10", D("-200.25"), "USD"),
    ("PQ-3", 1000006, 503, "azure", "2026-10", D("300.00"), "USD"),
]


def duckdb_file(name, amount_type, id_type):
    con = duckdb.connect()
    values = ", ".join(
        f"('{r}', {p}, {c}, '{cat}', '{m}', {a}, '{cur}')" for r, p, c, cat, m, a, cur in ROWS
    )
    con.execute(
        f"""COPY (SELECT record_id, partner_id::{id_type} AS partner_id,
                         customer_id::{id_type} AS customer_id, product_category, billing_month,
                         amount::{amount_type} AS amount, currency
                  FROM (VALUES {values}) t(record_id, partner_id, customer_id, product_category,
                                           billing_month, amount, currency))
            TO '{OUT / name}' (FORMAT parquet)"""
    )


duckdb_file("duckdb-decimal-bigint.parquet", "DECIMAL(18,2)", "BIGINT")
duckdb_file("duckdb-decimal-scale8.parquet", "DECIMAL(38,8)", "BIGINT")
duckdb_file("duckdb-hugeint-ids.parquet", "DECIMAL(18,2)", "HUGEINT")  # DuckDB writes HUGEINT as DOUBLE
duckdb_file("duckdb-decimal-int.parquet", "DECIMAL(9,2)", "INTEGER")


def arrow_table(id_type, amount_type, **overrides):
    columns = {
        "record_id": pa.array([r[0] for r in ROWS], pa.string()),
        "partner_id": pa.array([r[1] for r in ROWS], id_type),
        "customer_id": pa.array([r[2] for r in ROWS], pa.int16()),
        "product_category": pa.array([r[3] for r in ROWS], pa.large_string()),
        "billing_month": pa.array([r[4] for r in ROWS], pa.string()),
        "amount": pa.array([r[5] for r in ROWS], amount_type),
        "currency": pa.array([r[6] for r in ROWS], pa.string()),
    }
    columns.update(overrides)
    return pa.table(columns)


pq.write_table(arrow_table(pa.int32(), pa.decimal128(12, 2)), OUT / "pyarrow-int32-decimal128.parquet")
pq.write_table(arrow_table(pa.uint64(), pa.decimal128(20, 6)), OUT / "pyarrow-uint64-decimal-scale6.parquet")
pq.write_table(
    arrow_table(
        pa.int64(),
        pa.decimal128(12, 2),
        product_category=pa.array([r[3] for r in ROWS]).dictionary_encode(),
        currency=pa.array([r[6] for r in ROWS]).dictionary_encode(),
    ),
    OUT / "pyarrow-dictionary.parquet",
)
pq.write_table(arrow_table(pa.int64(), pa.decimal256(40, 2)), OUT / "pyarrow-decimal256.parquet")
pq.write_table(
    arrow_table(
        pa.int64(),
        pa.decimal128(12, 2),
        billing_month=pa.array([datetime.date(2026, 10, 1)] * len(ROWS), pa.date32()),
    ),
    OUT / "pyarrow-date-month.parquet",
)
pq.write_table(
    arrow_table(pa.int64(), pa.decimal128(12, 2), amount=pa.array([float(r[5]) for r in ROWS], pa.float64())),
    OUT / "pyarrow-float-amount.parquet",
)
pq.write_table(
    arrow_table(pa.int64(), pa.decimal128(12, 2), amount=pa.array([D("1.00"), None, D("2.00")], pa.decimal128(12, 2))),
    OUT / "pyarrow-null-amount.parquet",
)
pq.write_table(
    arrow_table(pa.int64(), pa.decimal128(12, 2), record_id=pa.array([r[0] for r in ROWS], pa.string_view())),
    OUT / "pyarrow-string-view.parquet",
)
pq.write_table(
    arrow_table(pa.int64(), pa.decimal128(12, 2), customer_id=pa.array([True, False, True], pa.bool_())),
    OUT / "pyarrow-bool-column.parquet",
)

pq.write_table(
    arrow_table(pa.int32(), pa.decimal32(9, 2), customer_id=pa.array([1, 2, 3], pa.int8())),
    OUT / "pyarrow-int8-decimal32.parquet",
)
pq.write_table(
    arrow_table(pa.uint32(), pa.decimal64(18, 2), customer_id=pa.array([1, 2, 3], pa.uint16())),
    OUT / "pyarrow-uint16-decimal64.parquet",
)
pq.write_table(
    arrow_table(pa.int64(), pa.decimal128(12, 2), record_id=pa.array([r[0].encode() for r in ROWS], pa.binary())),
    OUT / "pyarrow-binary-id.parquet",
)

pl.DataFrame(
    {
        "record_id": [r[0] for r in ROWS],
        "partner_id": pl.Series([r[1] for r in ROWS], dtype=pl.UInt32),
        "customer_id": pl.Series([r[2] for r in ROWS], dtype=pl.Int64),
        "product_category": [r[3] for r in ROWS],
        "billing_month": [r[4] for r in ROWS],
        "amount": pl.Series([r[5] for r in ROWS], dtype=pl.Decimal(12, 2)),
        "currency": [r[6] for r in ROWS],
    }
).write_parquet(OUT / "polars-decimal-uint32.parquet")

for path in sorted(OUT.glob("*.parquet")):
    print(path.name, pq.read_schema(path).types)
