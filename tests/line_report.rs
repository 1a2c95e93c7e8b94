//! The line report (`earnings_lines.parquet`) read back after `payout run` on the fixtures,
//! through the real store: money columns are Parquet DECIMAL at fixed scales, every earning is
//! worked out again here from the line's amount, rate and FX rate, the earnings summed exactly
//! per partner and booking and rounded half-even here (plain i128, not the engine's rounding)
//! equal payouts.csv, and every line that earns nothing says why.

mod common;

use std::collections::HashMap;

use common::{Env, backends};
use polars::prelude::*;

/// Scales of the report's DECIMAL columns.
const AMOUNT_SCALE: u32 = 6;
const RATE_SCALE: u32 = 10;
const EARNING_SCALE: u32 = 16;

/// ISO 4217 minor units of the fixtures' payout currencies, written out here so that the test
/// does not use the engine's table.
fn minor_units(code: &str) -> u32 {
    match code {
        "USD" | "EUR" | "GBP" => 2,
        "JPY" | "KRW" => 0,
        "KWD" => 3,
        other => panic!("no minor units known to the test for {other}"),
    }
}

/// `n / d` rounded half to even (`d > 0`).
fn div_half_even(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    let twice = r.abs() * 2;
    if twice > d || (twice == d && q % 2 != 0) {
        q + n.signum()
    } else {
        q
    }
}

/// An earning (10^-16 units) rounded half-even to `minor` places, as payouts.csv writes it.
fn rounded_text(earning: i128, minor: u32) -> String {
    let units = div_half_even(earning, 10i128.pow(EARNING_SCALE - minor));
    let sign = if units < 0 { "-" } else { "" };
    let (whole, fraction) = (
        units.abs() / 10i128.pow(minor),
        units.abs() % 10i128.pow(minor),
    );
    match minor {
        0 => format!("{sign}{whole}"),
        _ => format!("{sign}{whole}.{fraction:0width$}", width = minor as usize),
    }
}

/// A rate's text (`0.05`) in 10^-10 units.
fn scaled_rate(text: &str) -> i128 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    assert!(fraction.len() <= RATE_SCALE as usize, "rate {text}");
    let digits = format!("{whole}{fraction:0<width$}", width = RATE_SCALE as usize);
    digits.parse().unwrap()
}

/// A CSV report as rows keyed by header name.
fn csv_rows(text: &str) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

fn decimals(lines: &DataFrame, name: &str) -> Int128Chunked {
    let column = lines.column(name).unwrap().as_materialized_series();
    column.decimal().unwrap().physical().clone()
}

fn texts(lines: &DataFrame, name: &str) -> StringChunked {
    lines.column(name).unwrap().str().unwrap().clone()
}

#[tokio::test]
async fn line_report_money_is_decimal_sums_to_payouts_and_says_why_lines_earn_nothing() {
    for backend in backends() {
        let env = Env::new(backend).await;
        env.ok(&["close", "--period", "2026-09"]);
        env.add_late_file();
        env.ok(&["run", "--period", "2026-10"]);
        let file = std::fs::File::open(env.reports.join("2026-10/earnings_lines.parquet")).unwrap();
        let lines = ParquetReader::new(file).finish().unwrap();

        let dtype = |name: &str| lines.column(name).unwrap().dtype().clone();
        assert_eq!(
            dtype("amount"),
            DataType::Decimal(19, AMOUNT_SCALE as usize)
        );
        assert_eq!(dtype("fx_rate"), DataType::Decimal(38, RATE_SCALE as usize));
        assert_eq!(
            dtype("earning"),
            DataType::Decimal(38, EARNING_SCALE as usize)
        );
        assert_eq!(dtype("reason"), DataType::String);
        assert_eq!(dtype("rate"), DataType::String);
        assert_eq!(dtype("eligible"), DataType::Boolean);

        let (amount, fx_rate, earning) = (
            decimals(&lines, "amount"),
            decimals(&lines, "fx_rate"),
            decimals(&lines, "earning"),
        );
        let (partner, booking, rate, reason) = (
            texts(&lines, "partner_id"),
            texts(&lines, "booking"),
            texts(&lines, "rate"),
            texts(&lines, "reason"),
        );
        let (currency, payout_currency) =
            (texts(&lines, "currency"), texts(&lines, "payout_currency"));
        let eligibility: HashMap<String, HashMap<String, String>> =
            csv_rows(&env.report("2026-10", "eligibility.csv"))
                .into_iter()
                .map(|row| (row["partner_id"].clone(), row))
                .collect();

        let mut sums: HashMap<(String, String), i128> = HashMap::new();
        let (mut converted, mut ineligible, mut unrated) = (0, 0, 0);
        for row in 0..lines.height() {
            let pid = partner.get(row).unwrap();
            let booked = booking.get(row).unwrap();
            let amount = amount.get(row).expect("every line has its amount");
            let same_currency = currency.get(row) == payout_currency.get(row);
            let Some(value) = earning.get(row) else {
                let why = reason
                    .get(row)
                    .unwrap_or_else(|| panic!("line {row} has no reason"));
                let verdict = &eligibility[pid];
                if verdict["eligible"] == "false" && booked == "earned" {
                    assert_eq!(
                        why,
                        format!("INELIGIBLE:{}", verdict["reasons"]),
                        "line {row}"
                    );
                    ineligible += 1;
                } else if rate.get(row).is_none() {
                    assert!(
                        why == "UNRATED_CATEGORY" || why.starts_with("INELIGIBLE:"),
                        "line {row}: {why}"
                    );
                    unrated += usize::from(why == "UNRATED_CATEGORY");
                }
                assert_eq!(fx_rate.get(row), None, "line {row}");
                continue;
            };
            assert_eq!(reason.get(row), None, "line {row} earns but has a reason");
            let rate = scaled_rate(rate.get(row).expect("an earning line has its rate"));
            match fx_rate.get(row) {
                None => {
                    assert!(same_currency, "line {row} converted without an FX rate");
                    assert_eq!(value, amount * rate, "line {row}: amount × rate exactly");
                }
                Some(fx) => {
                    assert!(!same_currency, "line {row} has an FX rate it does not need");
                    // amount × rate × fx at scale 26, rounded half-even to 6 places.
                    let exact = amount * rate * fx;
                    let six = div_half_even(exact, 10i128.pow(EARNING_SCALE + RATE_SCALE - 6));
                    assert_eq!(value, six * 10i128.pow(EARNING_SCALE - 6), "line {row}");
                    converted += 1;
                }
            }
            *sums.entry((pid.to_owned(), booked.to_owned())).or_default() += value;
        }
        assert!(converted > 0, "the fixtures have converted lines");
        assert!(
            ineligible > 0,
            "the fixtures have lines of ineligible partners"
        );
        assert!(unrated > 0, "the fixtures have unrated lines");

        let payouts = csv_rows(&env.report("2026-10", "payouts.csv"));
        let mut checked = 0;
        for row in &payouts {
            let minor = minor_units(&row["currency"]);
            for (column, booked) in [("earned", "earned"), ("adjustments", "adjustment")] {
                let sum = sums
                    .remove(&(row["partner_id"].clone(), booked.to_owned()))
                    .unwrap_or(0);
                assert_eq!(
                    rounded_text(sum, minor),
                    row[column],
                    "partner {} {column} ({backend:?})",
                    row["partner_id"]
                );
                checked += 1;
            }
        }
        assert!(
            checked >= 40,
            "payouts.csv has the fixture partners: {checked}"
        );
        assert!(
            sums.values().all(|sum| *sum == 0),
            "earnings of partners missing from payouts.csv: {sums:?}"
        );
    }
}
