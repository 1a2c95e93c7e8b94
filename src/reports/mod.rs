//! Report files of a period (SPEC §5): `payouts.csv`, `eligibility.csv`, `exceptions.csv`,
//! `summary.csv` (the line report, `earnings_lines.parquet`, is streamed by the computation).
//! Reports are written into a staging folder and
//! published by one rename, so a crash never leaves a half-written period folder.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use crate::domain::exception::{ExceptionRow, RowFields};
use crate::domain::money::{Currency, MoneyError, Payable};
use crate::domain::reasons::{RejectReason, join_codes};
use crate::earnings::{PartnerFigures, PeriodComputation};

pub mod changes;
pub mod manifest;
pub mod xlsx;

/// The change list of a report folder (issue 15).
pub const CHANGES_FILE: &str = "changes.csv";

/// Text cells starting with these are prefixed with `'` (spreadsheet formula injection, SPEC §5).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A text cell, made safe to open in a spreadsheet. Money cells never go through this.
pub fn text_cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

fn csv_writer(path: &Path) -> io::Result<csv::Writer<BufWriter<File>>> {
    let file = BufWriter::new(File::create(path)?);
    Ok(csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(file))
}

fn finish(writer: csv::Writer<BufWriter<File>>) -> io::Result<()> {
    let file = writer
        .into_inner()
        .map_err(|e| io::Error::other(e.to_string()))?;
    file.into_inner()
        .map_err(|e| io::Error::other(e.to_string()))?
        .sync_all()
}

/// A partner's `payouts.csv` cells, as written (SPEC §5): `partner_id` first, then
/// `changes::PAYOUT_CELL_COLUMNS`.
pub fn payout_cells(row: &PartnerFigures, period: &str) -> Vec<String> {
    let s = &row.settlement;
    let money = |amount: Payable| amount.to_string();
    vec![
        text_cell(&row.partner_id).into_owned(),
        text_cell(&row.partner_name).into_owned(),
        text_cell(&row.program_id).into_owned(),
        period.to_owned(),
        row.currency.code().to_owned(),
        money(s.earned),
        money(s.adjustments),
        money(s.released),
        money(s.carried_in),
        money(s.payable),
        money(s.after.carried()),
        money(s.after.held()),
        s.status.code().to_owned(),
        join_codes(row.hold_reasons.iter().map(|r| r.code())),
    ]
}

/// Writes `changes.csv` (`changes::CHANGES_HEADER`; header only when nothing changed).
pub fn write_changes(dir: &Path, rows: &[changes::ChangeRow]) -> io::Result<()> {
    let mut writer = csv_writer(&dir.join(CHANGES_FILE))?;
    writer.write_record(changes::CHANGES_HEADER)?;
    for row in rows {
        // `before` and `after` are payouts.csv cells, already made safe as that file wrote them.
        writer.write_record([
            text_cell(&row.partner_id).as_ref(),
            &row.partner_name,
            row.column,
            &row.before,
            &row.after,
            &text_cell(&row.cause),
        ])?;
    }
    finish(writer)
}

/// Writes every report of `computation` into `dir`.
pub fn write_period_reports(
    dir: &Path,
    computation: &PeriodComputation,
    exceptions: &[ExceptionRow],
) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let period = computation.period.to_string();

    let mut payouts = csv_writer(&dir.join("payouts.csv"))?;
    payouts.write_record(PAYOUTS_HEADER)?;
    for row in &computation.payouts {
        let mut cells = payout_cells(row, &period);
        // After the SPEC columns (SPEC §5 allows more): why not eligible, and what resolving
        // every hold and eligibility failure would pay (issue 15).
        cells.push(bool_cell(row.ineligibility_reasons.is_empty()).to_owned());
        cells.push(join_codes(
            row.ineligibility_reasons.iter().map(|r| r.code()),
        ));
        cells.push(row.payable_if_resolved.to_string());
        payouts.write_record(cells)?;
    }
    finish(payouts)?;

    let mut eligibility = csv_writer(&dir.join("eligibility.csv"))?;
    eligibility.write_record([
        "partner_id",
        "program_id",
        "period",
        "eligible",
        "reasons",
        "revenue_lines",
        "partner_name",
    ])?;
    for row in &computation.eligibility {
        eligibility.write_record([
            text_cell(&row.partner_id).as_ref(),
            &text_cell(&row.program_id),
            &period,
            bool_cell(row.reasons.is_empty()),
            &join_codes(row.reasons.iter().map(|r| r.code())),
            &row.revenue_lines.to_string(),
            &text_cell(&row.partner_name),
        ])?;
    }
    finish(eligibility)?;

    let mut rows: Vec<ExceptionRow> = exceptions.to_vec();
    rows.extend(computation.fx_gaps.iter().map(|gap| ExceptionRow {
        source_file: gap.source_file.clone(),
        line: Some(gap.line),
        record_id: gap.record_id.clone(),
        reason: RejectReason::FxRateMissing.code().into(),
        detail: gap.detail.clone(),
        raw: String::new(),
        fields: RowFields::default(),
    }));
    rows.sort_by(|a, b| {
        (&a.source_file, a.line, &a.record_id).cmp(&(&b.source_file, b.line, &b.record_id))
    });
    let mut writer = csv_writer(&dir.join("exceptions.csv"))?;
    writer.write_record([
        "source_file",
        "line",
        "record_id",
        "reason",
        "detail",
        "raw",
        "partner_id",
        "billing_month",
        "amount",
        "currency",
        "retried",
    ])?;
    for row in &rows {
        // An ingested line whose FX rate went is computed again on every run, like a retried row.
        let retried = RejectReason::from_code(&row.reason).is_some_and(RejectReason::is_retried);
        writer.write_record([
            text_cell(&row.source_file).as_ref(),
            &row.line.map(|l| l.to_string()).unwrap_or_default(),
            &text_cell(&row.record_id),
            &row.reason,
            &text_cell(&row.detail),
            &text_cell(&row.raw),
            &text_cell(&row.fields.partner_id),
            &text_cell(&row.fields.billing_month),
            &amount_cell(&row.fields.amount),
            &text_cell(&row.fields.currency),
            bool_cell(retried),
        ])?;
    }
    finish(writer)?;

    write_summary(dir, computation)
}

/// `payouts.csv`'s header: the SPEC columns, then the review columns (issue 15).
const PAYOUTS_HEADER: [&str; 17] = [
    "partner_id",
    "partner_name",
    "program_id",
    "period",
    "currency",
    "earned",
    "adjustments",
    "released",
    "carried_in",
    "payable",
    "carried",
    "held",
    "status",
    "hold_reasons",
    "eligible",
    "ineligibility_reasons",
    "payable_if_resolved",
];

fn bool_cell(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

/// A rejected row's amount as it came: as is when it is a plain decimal, else a text cell.
fn amount_cell(text: &str) -> Cow<'_, str> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let plain = !digits.is_empty()
        && digits.split('.').count() <= 2
        && digits
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if plain {
        Cow::Borrowed(text)
    } else {
        text_cell(text)
    }
}

/// `summary.csv`: one row per (program, payout currency) (SPEC §7.10), the SPEC columns, then
/// `earned`, `adjustments` and `released`. Grand totals per currency are in `manifest.json`:
/// a row of its own would break the SPEC's row set.
fn write_summary(dir: &Path, computation: &PeriodComputation) -> io::Result<()> {
    let mut summary: BTreeMap<(&str, Currency), (u64, [Payable; 6])> = BTreeMap::new();
    let money_error = |e: MoneyError| io::Error::other(format!("summary.csv: {e}"));
    for row in &computation.payouts {
        let s = &row.settlement;
        let key = (row.program_id.as_str(), row.currency);
        let entry = match summary.get_mut(&key) {
            Some(entry) => entry,
            None => {
                let zero = Payable::zero(row.currency).map_err(|e| money_error(e.into()))?;
                summary.entry(key).or_insert((0, [zero; 6]))
            }
        };
        entry.0 += 1;
        let figures = [
            s.payable,
            s.after.held(),
            s.after.carried(),
            s.earned,
            s.adjustments,
            s.released,
        ];
        for (sum, figure) in entry.1.iter_mut().zip(figures) {
            *sum = sum.checked_add(figure).map_err(money_error)?;
        }
    }
    let mut writer = csv_writer(&dir.join("summary.csv"))?;
    writer.write_record([
        "program_id",
        "currency",
        "partners",
        "payable",
        "held",
        "carried",
        "earned",
        "adjustments",
        "released",
    ])?;
    for ((program_id, currency), (partners, sums)) in summary {
        let mut cells = vec![
            text_cell(program_id).into_owned(),
            currency.code().to_owned(),
            partners.to_string(),
        ];
        cells.extend(sums.iter().map(Payable::to_string));
        writer.write_record(cells)?;
    }
    finish(writer)
}

/// Puts a UTF-8 byte-order mark at the start of every CSV file in `dir` (`--csv-bom`: for
/// teams that double-click CSVs into Excel, which otherwise reads them in the local code page).
pub fn add_csv_bom(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "csv") {
            let text = std::fs::read(&path)?;
            let mut with_bom = Vec::with_capacity(text.len() + 3);
            with_bom.extend_from_slice("\u{feff}".as_bytes());
            with_bom.extend_from_slice(&text);
            let mut file = File::create(&path)?;
            std::io::Write::write_all(&mut file, &with_bom)?;
            file.sync_all()?;
        }
    }
    Ok(())
}

/// The staging folder of a period's reports: hidden, beside the published one.
pub fn staging_dir(reports_dir: &Path, period: &str, tag: &str) -> PathBuf {
    reports_dir.join(format!(".{period}.{tag}"))
}

/// Replaces `reports/<period>/` by `staged`, under a file lock so that two processes never
/// interleave. Does nothing when `staged` is gone (another process published it).
pub fn publish(reports_dir: &Path, period: &str, staged: &Path) -> io::Result<()> {
    std::fs::create_dir_all(reports_dir)?;
    let lock = File::create(reports_dir.join(format!(".{period}.lock")))?;
    lock.lock()?;
    if !staged.exists() {
        return Ok(());
    }
    let published = reports_dir.join(period);
    if published.exists() {
        std::fs::remove_dir_all(&published)?;
    }
    std::fs::rename(staged, &published)?;
    File::open(reports_dir)?.sync_all()
}

/// Removes staging folders that a crashed process left behind. Only for a period that is not
/// closed, under the ledger lease: no staging of a committed close can be among them.
pub fn remove_stale_staging(reports_dir: &Path, period: &str) -> io::Result<()> {
    let Ok(entries) = std::fs::read_dir(reports_dir) else {
        return Ok(());
    };
    let prefixes = [format!(".{period}.draft-"), format!(".{period}.close-")];
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_text_is_prefixed() {
        assert_eq!(text_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(text_cell("-3"), "'-3");
        assert_eq!(text_cell("@x"), "'@x");
        assert_eq!(text_cell("\tx"), "'\tx");
        assert_eq!(text_cell("Acme"), "Acme");
    }
}
