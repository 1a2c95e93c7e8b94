//! The monthly lifecycle through the real binary and the real store (SQLite and PostgreSQL):
//! drafts, closes, late revenue, retried rejections and changed master data, compared with
//! reports worked out by hand for the fixtures (tests/expected/, see its README).

mod common;

use common::{Env, assert_report, assert_reports, backends, expected};

const NOVEMBER_REVENUE: &str = "record_id,partner_id,customer_id,product_category,billing_month,amount,currency\n\
N-1101,1000006,C-040,azure,2026-11,1500.00,USD\n\
N-1102,1000015,C-130,azure,2026-11,2000.00,USD\n\
N-1103,1000001,C-001,m365,2026-11,1000.00,USD\n";

/// November's changes to the snapshot: the unknown partner appears, the missing GBP rate
/// arrives, and Woodgrove enrols.
fn change_master_data_for_november(env: &Env) {
    env.append_data(
        "partners.csv",
        "1000099,Tailwind Traders,direct,US,USD,ap@tailwind.example,2025-01-01,false\n",
    );
    env.append_data(
        "agreements.csv",
        "1000099,mpn,active,2020-01-01,\n1000099,reseller,active,2024-01-01,\n",
    );
    env.append_data("profiles.csv", "1000099,complete,validated\n");
    env.append_data("fx_rates.csv", "2026-10,GBP,EUR,1.148\n");
    env.replace_in_data(
        "partners.csv",
        "admin@woodgrove.example,,false",
        "admin@woodgrove.example,2026-11-01,false",
    );
    env.write_data("revenue/2026-11-billing.csv", NOVEMBER_REVENUE);
}

#[tokio::test]
async fn fixture_draft_matches_expected_reports_and_repeats_byte_for_byte() {
    for backend in backends() {
        let env = Env::new(backend).await;
        env.ok(&["run", "--period", "2026-10"]);
        assert_reports(&env, "2026-10", "draft-2026-10");
        let first = env.report_bytes("2026-10");
        assert!(
            first
                .iter()
                .any(|(name, _)| name == "earnings_lines.parquet")
        );
        let again = env.ok(&["run", "--period", "2026-10"]);
        assert!(again.contains("ingested 0 file(s)"), "{again}");
        assert!(again.contains("unchanged since the last draft"), "{again}");
        assert_eq!(
            first,
            env.report_bytes("2026-10"),
            "a repeated draft must be byte-identical ({backend:?})"
        );
    }
}

#[tokio::test]
async fn months_close_in_order_with_late_revenue_retries_and_changed_master_data() {
    for backend in backends() {
        let env = Env::new(backend).await;

        let refused = env.payout(&["close", "--period", "2026-10"]);
        assert!(!refused.status.success());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("earlier period 2026-09 has revenue and is still open"),
            "{stderr}"
        );

        env.ok(&["close", "--period", "2026-09"]);
        assert_report(
            &env.report("2026-09", "payouts.csv"),
            &expected("close-2026-09/payouts.csv"),
        );

        // Late September revenue arrives after September closed: booked into October.
        env.add_late_file();
        env.ok(&["run", "--period", "2026-10"]);
        let draft = env.report_bytes("2026-10");
        env.ok(&["close", "--period", "2026-10"]);
        assert_reports(&env, "2026-10", "close-2026-10");
        let closed = env.report_bytes("2026-10");
        let csv = |files: &[(String, Vec<u8>)]| {
            files
                .iter()
                .filter(|(n, _)| n.ends_with(".csv"))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            csv(&draft),
            csv(&closed),
            "the draft shows what closing produces"
        );

        // Closing again, or drafting a closed period, changes nothing.
        assert!(
            env.ok(&["close", "--period", "2026-10"])
                .contains("already closed")
        );
        env.ok(&["run", "--period", "2026-10"]);
        assert_eq!(closed, env.report_bytes("2026-10"));
        let too_late = env.payout(&["close", "--period", "2026-08"]);
        assert!(!too_late.status.success());

        change_master_data_for_november(&env);
        env.ok(&["run", "--period", "2026-11"]);
        assert_reports(&env, "2026-11", "draft-2026-11");

        let status = env.status_json();
        let periods: Vec<(String, String)> = status["periods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["period"].as_str().unwrap().to_owned(),
                    p["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            periods,
            [
                ("2026-09", "closed"),
                ("2026-10", "closed"),
                ("2026-11", "open")
            ]
            .map(|(p, s)| (p.to_owned(), s.to_owned()))
        );
        assert_eq!(
            status["exceptions"]["UNKNOWN_PARTNER"],
            serde_json::Value::Null,
            "retried rows were ingested"
        );
        assert_eq!(status["exceptions"]["INVALID_AMOUNT"], 4);
        // 5 September statements (6 recipients) and 24 October statements (25 recipients).
        assert_eq!(status["outbox"]["queued"], 31);
        let latest_run = &status["runs"][0];
        assert_eq!(latest_run["command"], "run");
        assert!(
            latest_run["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["file"] == "revenue/2026-11-billing.csv")
        );
    }
}

#[tokio::test]
async fn line_earnings_reconcile_with_period_totals() {
    use polars::prelude::*;
    use rust_decimal::{Decimal, RoundingStrategy};

    let env = Env::new(common::Backend::Sqlite).await;
    env.ok(&["close", "--period", "2026-09"]);
    env.add_late_file();
    env.ok(&["close", "--period", "2026-10"]);
    let lines = ParquetReader::new(
        std::fs::File::open(env.reports.join("2026-10/earnings_lines.parquet")).unwrap(),
    )
    .finish()
    .unwrap();
    let partner = lines.column("partner_id").unwrap().str().unwrap().clone();
    let booking = lines.column("booking").unwrap().str().unwrap().clone();
    // DECIMAL(38, 16) since issue 13; its text is exact.
    let earning = lines
        .column("earning")
        .unwrap()
        .cast(&DataType::String)
        .unwrap()
        .str()
        .unwrap()
        .clone();
    let mut sums: std::collections::HashMap<(String, String), Decimal> = Default::default();
    for row in 0..lines.height() {
        let value: Decimal = earning
            .get(row)
            .map_or(Decimal::ZERO, |e| e.parse().unwrap());
        *sums
            .entry((
                partner.get(row).unwrap().to_owned(),
                booking.get(row).unwrap().to_owned(),
            ))
            .or_default() += value;
    }
    let payouts = env.report("2026-10", "payouts.csv");
    let mut reader = csv::Reader::from_reader(payouts.as_bytes());
    let mut checked = 0;
    for record in reader.records() {
        let record = record.unwrap();
        let minor = record[5].split('.').nth(1).map_or(0, |f| f.len() as u32);
        for (column, kind) in [(5, "earned"), (6, "adjustment")] {
            let sum = sums
                .get(&(record[0].to_owned(), kind.to_owned()))
                .copied()
                .unwrap_or_default();
            let rounded = sum.round_dp_with_strategy(minor, RoundingStrategy::MidpointNearestEven);
            assert_eq!(
                rounded,
                record[column].parse::<Decimal>().unwrap(),
                "partner {} {kind}",
                &record[0]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 48);
}

#[tokio::test]
async fn bad_master_data_fails_before_anything_is_written() {
    let env = Env::new(common::Backend::Sqlite).await;
    env.replace_in_data(
        "agreements.csv",
        "1000003,mpn,active,2020-01-01,",
        "1000003,mpn,active,2020-13-01,",
    );
    let output = env.payout(&["run", "--period", "2026-10"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("agreements.csv: line 6: column `valid_from`"),
        "{stderr}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one-line reason: {stderr}"
    );
    assert!(!env.reports.exists(), "no report may be written");
    // The failed run is recorded, with its reason, and nothing else.
    let status = env.status_json();
    let runs = status["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["outcome"], "failed");
    assert!(runs[0]["inputs"].as_array().unwrap().is_empty());
    assert_eq!(
        status["periods"].as_array().unwrap().len(),
        0,
        "no revenue was ingested"
    );
}

#[tokio::test]
async fn a_missing_threshold_currency_is_a_configuration_error() {
    let env = Env::new(common::Backend::Sqlite).await;
    env.replace_in_data("programs.toml", ", KWD = \"30.000\"", "");
    let output = env.payout(&["run", "--period", "2026-10"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("program `csp-direct` has no min_payout for KWD"),
        "{stderr}"
    );
    assert!(!env.reports.exists());
}

#[tokio::test]
async fn preview_computes_the_draft_from_the_files_alone() {
    let env = Env::new(common::Backend::Sqlite).await;
    let out = env.dir.path().join("preview");
    let message = env.ok(&[
        "preview",
        "--period",
        "2026-10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(message.contains("payout row(s)"), "{message}");
    // The same reports as the first draft on an empty store, without touching any store.
    for file in [
        "payouts.csv",
        "eligibility.csv",
        "exceptions.csv",
        "summary.csv",
    ] {
        let actual = std::fs::read_to_string(out.join(file)).unwrap();
        assert_report(&actual, &expected("draft-2026-10").join(file));
    }
    assert!(!env.dir.path().join("payout.db").exists());
    assert!(!env.reports.exists());
}

#[tokio::test]
async fn a_file_rejected_after_its_first_blocks_leaves_nothing_behind() {
    for backend in backends() {
        let env = Env::new(backend).await;
        // More than one 16 MiB block of good lines, then a line that is not UTF-8: the file is
        // rejected whole after some of its segments were written in its transaction.
        let mut text =
            b"record_id,partner_id,customer_id,product_category,billing_month,amount,currency\n"
                .to_vec();
        let good = 450_000;
        for i in 0..good {
            text.extend_from_slice(
                format!("BIG-{i:07},1000001,C-1,azure,2026-10,1.00,USD\n").as_bytes(),
            );
        }
        text.extend_from_slice(b"BIG-X,1000001,C-1,azure,2026-10,1.00,\xff\n");
        assert!(text.len() > 16 << 20);
        std::fs::write(env.data.join("revenue/2026-10-big.csv"), &text).unwrap();
        let message = env.ok(&["run", "--period", "2026-10"]);
        assert!(message.contains("2 file(s) rejected"), "{message}");
        let exceptions = env.report("2026-10", "exceptions.csv");
        let line = good + 2;
        assert!(
            exceptions.contains(&format!(
                "revenue/2026-10-big.csv,,,FILE_REJECTED,not UTF-8 (line {line}),"
            )),
            "{exceptions}"
        );
        // Nothing of the file counts: the payouts are the fixtures' own.
        assert_report(
            &env.report("2026-10", "payouts.csv"),
            &expected("draft-2026-10").join("payouts.csv"),
        );
        let again = env.ok(&["run", "--period", "2026-10"]);
        assert!(again.contains("ingested 0 file(s)"), "{again}");
        // The preview, which computes as it reads, leaves the file out as well.
        let out = env.dir.path().join("preview");
        env.ok(&[
            "preview",
            "--period",
            "2026-10",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_report(
            &std::fs::read_to_string(out.join("payouts.csv")).unwrap(),
            &expected("draft-2026-10").join("payouts.csv"),
        );
        let preview_exceptions = std::fs::read_to_string(out.join("exceptions.csv")).unwrap();
        assert_eq!(preview_exceptions, exceptions);
    }
}
