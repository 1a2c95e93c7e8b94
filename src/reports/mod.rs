//! Report files of a period (SPEC §5): `payouts.csv`, `eligibility.csv`, `exceptions.csv`,
//! `summary.csv` (the line report, `earnings_lines.parquet`, is streamed by the computation).
//! Reports are written into a staging folder and
//! published by one rename, so a crash never leaves a half-written period folder.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use crate::domain::exception::ExceptionRow;
use crate::domain::money::{Currency, MoneyError, Payable};
use crate::domain::reasons::join_codes;
use crate::earnings::PeriodComputation;

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

/// Writes every report of `computation` into `dir`.
pub fn write_period_reports(
    dir: &Path,
    computation: &PeriodComputation,
    exceptions: &[ExceptionRow],
) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let period = computation.period.to_string();

    let mut payouts = csv_writer(&dir.join("payouts.csv"))?;
    payouts.write_record([
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
    ])?;
    for row in &computation.payouts {
        let s = &row.settlement;
        let money = |amount: Payable| amount.to_string();
        payouts.write_record([
            text_cell(&row.partner_id).as_ref(),
            &text_cell(&row.partner_name),
            &text_cell(&row.program_id),
            &period,
            row.currency.code(),
            &money(s.earned),
            &money(s.adjustments),
            &money(s.released),
            &money(s.carried_in),
            &money(s.payable),
            &money(s.after.carried()),
            &money(s.after.held()),
            s.status.code(),
            &join_codes(row.hold_reasons.iter().map(|r| r.code())),
        ])?;
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
    ])?;
    for row in &computation.eligibility {
        eligibility.write_record([
            text_cell(&row.partner_id).as_ref(),
            &text_cell(&row.program_id),
            &period,
            if row.reasons.is_empty() {
                "true"
            } else {
                "false"
            },
            &join_codes(row.reasons.iter().map(|r| r.code())),
            &row.revenue_lines.to_string(),
        ])?;
    }
    finish(eligibility)?;

    let mut rows: Vec<ExceptionRow> = exceptions.to_vec();
    rows.extend(computation.fx_gaps.iter().map(|gap| ExceptionRow {
        source_file: gap.source_file.clone(),
        line: Some(gap.line),
        record_id: gap.record_id.clone(),
        reason: "FX_RATE_MISSING".into(),
        detail: gap.detail.clone(),
        raw: String::new(),
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
    ])?;
    for row in &rows {
        writer.write_record([
            text_cell(&row.source_file).as_ref(),
            &row.line.map(|l| l.to_string()).unwrap_or_default(),
            &text_cell(&row.record_id),
            &row.reason,
            &text_cell(&row.detail),
            &text_cell(&row.raw),
        ])?;
    }
    finish(writer)?;

    let mut summary: BTreeMap<(&str, Currency), (u64, Payable, Payable, Payable)> = BTreeMap::new();
    let money_error = |e: MoneyError| io::Error::other(format!("summary.csv: {e}"));
    for row in &computation.payouts {
        let s = &row.settlement;
        let key = (row.program_id.as_str(), row.currency);
        let entry = match summary.get_mut(&key) {
            Some(entry) => entry,
            None => {
                let zero = Payable::zero(row.currency).map_err(|e| money_error(e.into()))?;
                summary.entry(key).or_insert((0, zero, zero, zero))
            }
        };
        entry.0 += 1;
        entry.1 = entry.1.checked_add(s.payable).map_err(money_error)?;
        entry.2 = entry.2.checked_add(s.after.held()).map_err(money_error)?;
        entry.3 = entry
            .3
            .checked_add(s.after.carried())
            .map_err(money_error)?;
    }
    let mut writer = csv_writer(&dir.join("summary.csv"))?;
    writer.write_record([
        "program_id",
        "currency",
        "partners",
        "payable",
        "held",
        "carried",
    ])?;
    for ((program_id, currency), (partners, payable, held, carried)) in summary {
        writer.write_record([
            text_cell(program_id).as_ref(),
            currency.code(),
            &partners.to_string(),
            &payable.to_string(),
            &held.to_string(),
            &carried.to_string(),
        ])?;
    }
    finish(writer)?;

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
