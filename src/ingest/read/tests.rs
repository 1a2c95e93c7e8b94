//! Tests of the revenue readers on small files: physical lines, field counts, duplicate
//! columns, bounded raw text, long lines, carriage returns, batches of rejections.

use std::path::Path;

use super::*;
use crate::ingest::MasterData;
use crate::ingest::record_index::RecordIndex;
use crate::ingest::rows;

/// `text` written as `dir/name`, as the listing would find it in `revenue/`.
fn revenue_file(dir: &Path, name: &str, text: &str) -> RevenueFile {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    RevenueFile {
        source_file: format!("revenue/{name}"),
        path,
        sha256: String::new(),
        plain: None,
    }
}

/// Reads one revenue file against the fixtures' master data; returns (line, reason, raw)
/// of each rejection and the number of accepted lines.
fn read(name: &str, text: &str) -> (Vec<(Option<u64>, RejectReason, String)>, u64) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let master = MasterData::load(&fixtures).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = revenue_file(dir.path(), name, text);
    let mut checker = RowChecker::new(&master, None, RecordIndex::default());
    let mut reader = FileReader::open(&file).unwrap();
    let mut rejections = Vec::new();
    while let Some(step) = reader.next_batch(&mut checker).unwrap() {
        rejections.extend(step.rejections);
    }
    let ingest = reader.finish();
    rejections.extend(ingest.rejections);
    assert_eq!(rejections.len() as u64, ingest.rejected);
    assert_eq!(
        ingest.rows,
        ingest.accepted + ingest.rejected + ingest.duplicates
    );
    let rejections = rejections
        .into_iter()
        .map(|r| (r.line, r.reason, r.raw))
        .collect();
    (rejections, ingest.accepted)
}

#[test]
fn quoted_and_plain_files_report_physical_lines() {
    let header =
        "record_id,partner_id,customer_id,product_category,billing_month,amount,currency\n";
    let plain = format!(
        "{header}A-1,1000001,C-1,azure,2026-10,1.00,USD\n\nA-2,1000001,C-1,azure,2026-10,x,USD\nA-3,1000001,C-1,azure,2026-10,2.00,USD\nA-1,1000001,C-1,azure,2026-10,1.00,USD\n"
    );
    // The same rows, but the first customer's name is quoted across two lines.
    let quoted = format!(
        "{header}A-1,1000001,\"C\n1\",azure,2026-10,1.00,USD\n\nA-2,1000001,C-1,azure,2026-10,x,USD\nA-3,1000001,C-1,azure,2026-10,2.00,USD\nA-1,1000001,\"C\n1\",azure,2026-10,1.00,USD\n"
    );
    let (rejections, accepted) = read("plain.csv", &plain);
    assert_eq!(accepted, 2);
    assert_eq!(
        rejections,
        vec![(
            Some(4),
            RejectReason::InvalidAmount,
            "A-2,1000001,C-1,azure,2026-10,x,USD".to_owned()
        )]
    );
    let (rejections, accepted) = read("quoted.csv", &quoted);
    assert_eq!(accepted, 2);
    assert_eq!(
        rejections,
        vec![(
            Some(5),
            RejectReason::InvalidAmount,
            "A-2,1000001,C-1,azure,2026-10,x,USD".to_owned()
        )]
    );
}

const HEADER: &str =
    "record_id,partner_id,customer_id,product_category,billing_month,amount,currency\n";

fn reasons(rejections: &[(Option<u64>, RejectReason, String)]) -> Vec<(u64, RejectReason)> {
    rejections
        .iter()
        .map(|(line, reason, _)| (line.unwrap_or(0), *reason))
        .collect()
}

#[test]
fn a_row_with_another_field_count_than_the_header_is_rejected_whole_in_both_readers() {
    // The issue's case: `amount` last, a thousands separator makes one field too many.
    let header =
        "billing_month,record_id,partner_id,customer_id,product_category,currency,amount\n";
    let rows = "2026-10,T-0,1000001,C-001,azure,USD,10.00\n\
                    2026-10,T-1,1000001,C-001,azure,USD,1,234.50\n\
                    2026-10,T-2,1000001,C-001,azure,USD,-1,500.00\n\
                    2026-10,T-3,1000001,C-001,azure,USD\n";
    for (name, text) in [
        ("plain.csv", format!("{header}{rows}")),
        // A quoted field sends the file through the csv crate.
        (
            "quoted.csv",
            format!("{header}\"2026-10\",T-9,1000001,C-001,azure,USD,1.00\n{rows}"),
        ),
    ] {
        let (rejections, accepted) = read(name, &text);
        let first = if name == "plain.csv" { 2 } else { 3 };
        assert_eq!(accepted, if name == "plain.csv" { 1 } else { 2 }, "{name}");
        assert_eq!(
            reasons(&rejections),
            vec![
                (first + 1, RejectReason::MalformedRow),
                (first + 2, RejectReason::MalformedRow),
                (first + 3, RejectReason::MalformedRow),
            ],
            "{name}"
        );
        assert_eq!(
            rejections[0].2, "2026-10,T-1,1000001,C-001,azure,USD,1,234.50",
            "{name}: raw as read"
        );
        assert_eq!(
            rejections[2].2, "2026-10,T-3,1000001,C-001,azure,USD",
            "{name}: never padded"
        );
    }
}

#[test]
fn a_column_named_twice_rejects_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        (
            "a.csv",
            "record_id,partner_id,customer_id,product_category,billing_month,amount,currency,amount\nR,1,C,azure,2026-10,1,USD,2\n",
        ),
        (
            "b.csv",
            "record_id,partner_id,customer_id,product_category,billing_month,amount,currency,region,region\n\"R\",1,C,azure,2026-10,1,USD,x,y\n",
        ),
    ] {
        let file = revenue_file(dir.path(), name, text);
        let error = FileReader::open(&file).err().expect(name);
        let error = error.to_string();
        assert!(error.contains("appears more than once"), "{name}: {error}");
    }
    // Empty names, as a trailing comma leaves them, are not ambiguous.
    let (rejections, accepted) = read(
        "c.csv",
        &(HEADER.replace('\n', ",,\n") + "R-1,1000001,C,azure,2026-10,1.00,USD,,\n"),
    );
    assert_eq!((rejections.len(), accepted), (0, 1));
}

#[test]
fn nul_bytes_and_overlong_fields_are_malformed_rows_with_bounded_raw_text() {
    let long = "x".repeat(rows::MAX_FIELD_BYTES + 1);
    let huge = "y".repeat(200_000);
    let text = format!(
        "{HEADER}R-1,1000001,C\0,azure,2026-10,1.00,USD\nR-2,1000001,{long},azure,2026-10,1.00,USD\nR-3,1000001,{huge},azure,2026-10,1.00,USD\nR-4,1000001,C,azure,2026-10,1.00,USD\n"
    );
    for name in ["plain.csv", "quoted.csv"] {
        let text = if name == "quoted.csv" {
            text.replace("R-4", "\"R-4\"")
        } else {
            text.clone()
        };
        let (rejections, accepted) = read(name, &text);
        assert_eq!(accepted, 1, "{name}");
        assert_eq!(
            reasons(&rejections),
            vec![
                (2, RejectReason::MalformedRow),
                (3, RejectReason::MalformedRow),
                (4, RejectReason::MalformedRow)
            ],
            "{name}"
        );
        let raw = &rejections[2].2;
        assert!(
            raw.len() < rows::MAX_RAW_BYTES + 64,
            "{name}: raw kept is bounded: {}",
            raw.len()
        );
        assert!(raw.ends_with("bytes in all)"), "{name}: says it was cut");
    }
}

#[test]
fn a_line_longer_than_the_limit_is_rejected_alone_without_holding_it() {
    let long = "z".repeat(rows::MAX_LINE_BYTES + 10);
    let text = format!(
        "{HEADER}R-1,1000001,C,azure,2026-10,1.00,USD\nR-2,1000001,{long},azure,2026-10,1.00,USD\nR-3,1000001,C,azure,2026-10,2.00,USD\n"
    );
    let (rejections, accepted) = read("long.csv", &text);
    assert_eq!(accepted, 2);
    assert_eq!(reasons(&rejections), vec![(3, RejectReason::MalformedRow)]);
    assert!(rejections[0].2.starts_with("R-2,1000001,zzz"));
    assert!(rejections[0].2.len() <= rows::MAX_RAW_BYTES + 64);
}

#[test]
fn carriage_return_line_ends_give_the_lines_an_editor_shows() {
    let text = HEADER.replace('\n', "\r")
        + "R-1,1000001,C,azure,2026-10,1.00,USD\r\rR-2,1000001,C,azure,2026-10,x,USD\r\nR-3,1000001,C,azure,2026-10,y,USD\r";
    let (rejections, accepted) = read("cr.csv", &text);
    assert_eq!(accepted, 1);
    assert_eq!(
        reasons(&rejections),
        vec![
            (4, RejectReason::InvalidAmount),
            (5, RejectReason::InvalidAmount)
        ]
    );
}

#[test]
fn rejections_are_handed_out_in_bounded_batches() {
    let mut text = HEADER.to_owned();
    let bad = REJECTION_BATCH * 2 + 17;
    for n in 0..bad {
        text.push_str(&format!("R-{n},1000001,C,azure,2026-10,bad,USD\n"));
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let master = MasterData::load(&fixtures).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = revenue_file(dir.path(), "bad.csv", &text);
    let mut checker = RowChecker::new(&master, None, RecordIndex::default());
    let mut reader = FileReader::open(&file).unwrap();
    let mut handed_out = 0;
    while let Some(step) = reader.next_batch(&mut checker).unwrap() {
        assert!(step.lines.is_none());
        assert!(step.rejections.len() >= REJECTION_BATCH);
        handed_out += step.rejections.len();
    }
    let ingest = reader.finish();
    assert!(handed_out >= REJECTION_BATCH, "handed out before the end");
    assert_eq!(handed_out + ingest.rejections.len(), bad);
    assert_eq!(ingest.rejected as usize, bad);
}

#[test]
fn a_value_under_an_unnamed_column_is_a_shifted_row_not_a_truncated_amount() {
    // Excel leaves a trailing comma on every line: the header gets an unnamed eighth column,
    // and an unquoted `1,234.50` then has exactly the header's field count.
    let header =
        "billing_month,record_id,partner_id,customer_id,product_category,currency,amount,\n";
    let text = format!(
        "{header}2026-10,T-0,1000001,C-001,azure,USD,10.00,\n2026-10,T-1,1000001,C-001,azure,USD,1,234.50\n"
    );
    for (name, text) in [
        ("plain.csv", text.clone()),
        ("quoted.csv", text.replace("T-0", "\"T-0\"")),
    ] {
        let (rejections, accepted) = read(name, &text);
        assert_eq!(accepted, 1, "{name}");
        assert_eq!(
            reasons(&rejections),
            vec![(3, RejectReason::MalformedRow)],
            "{name}"
        );
    }
}
