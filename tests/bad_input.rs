//! Revenue as users really send it, through the real binary: rows that cannot be read exactly,
//! and Parquet files as DuckDB, pyarrow and polars write them (`tests/inputs/parquet/`, made by
//! `scripts/make-parquet-inputs.py`). Nothing is guessed, nothing panics, the run goes on.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Backend, Env, assert_report, backends, expected};

/// `exceptions.csv` rows of one source file: (line, reason, detail).
fn exceptions_of(env: &Env, source_file: &str) -> Vec<(String, String, String)> {
    let text = env.report("2026-10", "exceptions.csv");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[0] == source_file)
        .map(|r| (r[1].to_owned(), r[3].to_owned(), r[4].to_owned()))
        .collect()
}

/// `revenue_lines` of `eligibility.csv` by partner.
fn revenue_lines(text: &str) -> BTreeMap<String, u64> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.unwrap())
        .map(|r| (r[0].to_owned(), r[5].parse().unwrap()))
        .collect()
}

#[tokio::test]
async fn a_row_with_one_field_too_many_is_rejected_and_moves_no_money() {
    for backend in backends() {
        let env = Env::new(backend).await;
        // `amount` is the last column of this file: `1,234.50` makes an eighth field.
        env.append_data(
            "revenue/2026-09-billing.csv",
            "2026-10,T-1,1000001,C-001,azure,USD,1,234.50\n2026-10,T-2,1000001,C-001,azure,USD,-1,500.00\n",
        );
        env.ok(&["run", "--period", "2026-10"]);
        let rows = exceptions_of(&env, "revenue/2026-09-billing.csv");
        assert_eq!(rows.len(), 2, "{rows:?}");
        for (row, raw_amount) in rows.iter().zip(["1,234.50", "-1,500.00"]) {
            assert_eq!(row.1, "MALFORMED_ROW", "{row:?}");
            assert_eq!(row.2, "the row has 8 fields, the header has 7", "{row:?}");
            let exceptions = env.report("2026-10", "exceptions.csv");
            assert!(
                exceptions.contains(raw_amount),
                "raw text shown: {exceptions}"
            );
        }
        // Neither `1` nor `-1` was ingested: the payouts are those of the fixtures.
        assert_report(
            &env.report("2026-10", "payouts.csv"),
            &expected("draft-2026-10").join("payouts.csv"),
        );
    }
}

/// What each Parquet input must give: no exception (its three lines accepted), or the
/// exceptions expected of a file: (line, reason, a word of the detail).
type Expected = Vec<(&'static str, &'static str, &'static str)>;

fn parquet_expectations() -> Vec<(&'static str, Expected)> {
    let file_rejected = |word| vec![("", "FILE_REJECTED", word)];
    let accepted = Vec::new;
    vec![
        ("duckdb-decimal-bigint.parquet", accepted()),
        ("duckdb-decimal-int.parquet", accepted()),
        ("polars-decimal-uint32.parquet", accepted()),
        ("pyarrow-int32-decimal128.parquet", accepted()),
        ("pyarrow-int8-decimal32.parquet", accepted()),
        ("pyarrow-uint16-decimal64.parquet", accepted()),
        ("pyarrow-uint64-decimal-scale6.parquet", accepted()),
        ("pyarrow-dictionary.parquet", accepted()),
        ("pyarrow-string-view.parquet", accepted()),
        (
            "duckdb-decimal-scale8.parquet",
            vec![
                ("2", "INVALID_AMOUNT", "more than 6 decimal places"),
                ("3", "INVALID_AMOUNT", "more than 6 decimal places"),
                ("4", "INVALID_AMOUNT", "more than 6 decimal places"),
            ],
        ),
        (
            "pyarrow-null-amount.parquet",
            vec![("3", "MISSING_FIELD", "amount")],
        ),
        ("duckdb-hugeint-ids.parquet", file_rejected("partner_id")),
        (
            "pyarrow-float-amount.parquet",
            file_rejected("floating point"),
        ),
        ("pyarrow-date-month.parquet", file_rejected("billing_month")),
        ("pyarrow-decimal256.parquet", file_rejected("38 digits")),
        ("pyarrow-bool-column.parquet", file_rejected("customer_id")),
        ("pyarrow-binary-id.parquet", file_rejected("record_id")),
    ]
}

#[tokio::test]
async fn parquet_as_duckdb_pyarrow_and_polars_write_it_is_read_exactly_or_refused_by_file() {
    let inputs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inputs/parquet");
    let baseline = revenue_lines(
        &std::fs::read_to_string(expected("draft-2026-10").join("eligibility.csv")).unwrap(),
    );
    let expectations = parquet_expectations();
    let listed = std::fs::read_dir(&inputs).unwrap().count();
    assert_eq!(
        listed,
        expectations.len(),
        "every input file has an expectation"
    );
    for (name, expected_rows) in expectations {
        let env = Env::new(Backend::Sqlite).await;
        std::fs::copy(inputs.join(name), env.data.join("revenue").join(name)).unwrap();
        let output = env.payout(&["run", "--period", "2026-10"]);
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let rows = exceptions_of(&env, &format!("revenue/{name}"));
        assert_eq!(rows.len(), expected_rows.len(), "{name}: {rows:?}");
        for (row, (line, reason, word)) in rows.iter().zip(&expected_rows) {
            assert_eq!((row.0.as_str(), row.1.as_str()), (*line, *reason), "{name}");
            assert!(row.2.contains(word), "{name}: `{}` names `{word}`", row.2);
        }
        let lines = revenue_lines(&env.report("2026-10", "eligibility.csv"));
        let added = |partner: &str| lines[partner] - baseline[partner];
        let accepted = match expected_rows.first().map(|r| r.1) {
            None => (2, 1),
            Some("MISSING_FIELD") => (1, 1),
            Some(_) => (0, 0),
        };
        assert_eq!((added("1000001"), added("1000006")), accepted, "{name}");
    }
}

#[tokio::test]
async fn a_decimal_parquet_file_is_drafted_and_closed_on_both_backends() {
    let inputs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inputs/parquet");
    for backend in backends() {
        let env = Env::new(backend).await;
        // This file alone, so that Contoso's earning is the file's: 6% of 1000.50 - 200.25.
        for entry in std::fs::read_dir(env.data.join("revenue")).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        let name = "duckdb-decimal-bigint.parquet";
        std::fs::copy(inputs.join(name), env.data.join("revenue").join(name)).unwrap();
        env.ok(&["run", "--period", "2026-10"]);
        let draft = env.report("2026-10", "payouts.csv");
        env.ok(&["close", "--period", "2026-10"]);
        assert_eq!(draft, env.report("2026-10", "payouts.csv"), "{backend:?}");
        let contoso = draft.lines().find(|l| l.starts_with("1000001,")).unwrap();
        // 48.015 rounds half-even to 48.02.
        assert_eq!(
            contoso.split(',').nth(5),
            Some("48.02"),
            "{backend:?}: {contoso}"
        );
    }
}

#[tokio::test]
async fn a_file_of_more_bad_rows_than_one_batch_keeps_every_rejection() {
    // More than `REJECTION_BATCH` (10,000) rows, so they reach the store in several batches.
    const BAD: usize = 10_437;
    let mut text =
        "record_id,partner_id,customer_id,product_category,billing_month,amount,currency\n"
            .to_owned();
    for n in 0..BAD {
        text.push_str(&format!("B-{n},1000001,C-1,azure,2026-10,bad,USD\n"));
    }
    text.push_str("B-ok,1000001,C-1,azure,2026-10,1.00,USD\n");
    for backend in backends() {
        let env = Env::new(backend).await;
        env.write_data("revenue/2026-10-bad.csv", &text);
        env.ok(&["run", "--period", "2026-10"]);
        let rows = exceptions_of(&env, "revenue/2026-10-bad.csv");
        assert_eq!(rows.len(), BAD, "{backend:?}: every rejection is kept");
        assert!(rows.iter().all(|r| r.1 == "INVALID_AMOUNT"));
        let preview = env.dir.path().join("preview");
        env.ok(&[
            "preview",
            "--period",
            "2026-10",
            "--out",
            preview.to_str().unwrap(),
        ]);
        let previewed = std::fs::read_to_string(preview.join("exceptions.csv")).unwrap();
        assert_eq!(
            previewed
                .lines()
                .filter(|l| l.starts_with("revenue/2026-10-bad.csv,"))
                .count(),
            BAD,
            "{backend:?}: preview keeps them too"
        );
    }
}

/// Sets every stored segment's record keys to zeros marked as the unkeyed scheme of before
/// migration 0012: the keys a store written by an older version holds (as far as they match
/// nothing). The check must make them again from the segments' text.
async fn make_record_keys_legacy(env: &Env) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&env.database_url).await.unwrap();
    let ids: Vec<(i64, i64)> = sqlx::query_as("SELECT id, rows FROM revenue_segments")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(!ids.is_empty());
    for (id, rows) in ids {
        sqlx::query("UPDATE revenue_segments SET key_scheme = 1, record_keys = $1 WHERE id = $2")
            .bind(vec![0u8; rows as usize * 24])
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

#[tokio::test]
async fn a_resent_row_is_a_duplicate_a_changed_one_a_conflict_against_history_old_and_new() {
    for backend in backends() {
        for legacy in [false, true] {
            let env = Env::new(backend).await;
            env.ok(&["run", "--period", "2026-10"]);
            let before = revenue_lines(&env.report("2026-10", "eligibility.csv"));
            if legacy {
                make_record_keys_legacy(&env).await;
            }
            // A re-sent row (same seven fields, other region), a changed one, a new one.
            env.write_data(
                "revenue/2026-10-resent.csv",
                "record_id,partner_id,customer_id,product_category,billing_month,amount,currency,region\n\
                 R-1001,1000001,C-001,azure,2026-10,12500.00,USD,eu-west\n\
                 R-1002,1000001,C-002,m365,2026-10,4300.56,USD,us-east\n\
                 R-9001,1000001,C-001,azure,2026-10,1.00,USD,us-east\n",
            );
            env.ok(&["run", "--period", "2026-10"]);
            let rows = exceptions_of(&env, "revenue/2026-10-resent.csv");
            assert_eq!(
                rows,
                vec![(
                    "3".to_owned(),
                    "DUPLICATE_CONFLICT".to_owned(),
                    "record_id `R-1002` was already ingested with different content".to_owned()
                )],
                "{backend:?} legacy keys: {legacy}"
            );
            let after = revenue_lines(&env.report("2026-10", "eligibility.csv"));
            assert_eq!(
                after["1000001"],
                before["1000001"] + 1,
                "{backend:?} legacy keys: {legacy}: only the new row counts"
            );
        }
    }
}
