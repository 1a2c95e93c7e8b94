//! The text of `payout status` (SPEC §6): the store's `StatusReport` as plain tables for a
//! terminal. It only formats what it is given; it never queries the store or changes state.
//! (`payout status --json` is the same report serialised as is.)

use crate::domain::status::{FireStatus, OutboxStatus};
use crate::store::StatusReport;

/// The status report as plain tables for a terminal.
pub fn render_status(report: &StatusReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "PERIODS");
    if report.periods.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for p in &report.periods {
        let totals: Vec<String> = p
            .totals
            .iter()
            .map(|t| {
                format!(
                    "{} {} partners payable {} held {} carried {}",
                    t.currency, t.partners, t.payable, t.held, t.carried
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "  {}  {:<6}  {:>10} lines  {}",
            p.period,
            p.state,
            p.revenue_lines,
            totals.join("; ")
        );
    }
    let _ = writeln!(out, "RUNS (latest first)");
    for r in &report.runs {
        let duration = r.duration_ms.map_or_else(
            || "-".to_owned(),
            |ms| format!("{:.1}s", ms as f64 / 1000.0),
        );
        let _ = writeln!(
            out,
            "  {}  {:<6} {:<8} {:<10} {:>7}  {} input file(s){}{}",
            r.started_at,
            r.command,
            r.period.as_deref().unwrap_or("-"),
            r.outcome.as_str(),
            duration,
            r.inputs.len(),
            match r.warnings {
                0 => String::new(),
                n => format!(", {n} warning(s)"),
            },
            r.detail
                .as_deref()
                .map(|d| format!("  {d}"))
                .unwrap_or_default()
        );
        for input in &r.inputs {
            let _ = writeln!(
                out,
                "      {}  {}",
                &input.sha256[..16.min(input.sha256.len())],
                input.file
            );
        }
    }
    if let Some(first) = report.warnings.first() {
        let _ = writeln!(out, "WARNINGS (latest run {})", first.run_id);
        for w in &report.warnings {
            let at = w.line.map(|l| format!(": line {l}")).unwrap_or_default();
            let _ = writeln!(out, "  {}{at}: {}", w.file, w.message);
        }
    }
    let _ = writeln!(out, "OPEN EXCEPTIONS");
    if report.exceptions.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for (reason, count) in &report.exceptions {
        let _ = writeln!(out, "  {reason:<20} {count}");
    }
    if !report.partners_missing.is_empty() {
        let _ = writeln!(
            out,
            "PARTNERS MISSING FROM partners.csv (money kept in the store)"
        );
        for missing in &report.partners_missing {
            let _ = writeln!(out, "  {:<12} {}", missing.partner_id, missing.detail);
        }
    }
    let _ = writeln!(out, "OUTBOX");
    for status in OutboxStatus::ALL.iter().map(|s| s.as_str()) {
        let count = report.outbox.get(status).copied().unwrap_or(0);
        let _ = writeln!(out, "  {status:<8} {count}");
    }
    for failed in &report.failed_messages {
        let _ = writeln!(
            out,
            "  failed #{} {} {} to {}: {}",
            failed.id, failed.kind, failed.partner_id, failed.recipient, failed.reason
        );
    }
    if !report.resends.is_empty() {
        let _ = writeln!(out, "RESENDS (latest first)");
        for resend in &report.resends {
            let _ = writeln!(
                out,
                "  {}  {} partner {} by {}: {} queued{}, {} already had it",
                resend.requested_at,
                resend.period,
                resend.partner_id,
                resend.requested_by,
                resend.queued,
                if resend.recipients.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", resend.recipients.join(", "))
                },
                resend.already_had
            );
        }
    }
    render_jobs(&mut out, report);
    if !report.waves.is_empty() {
        let _ = writeln!(out, "MIGRATION WAVES");
        for wave in &report.waves {
            let _ = writeln!(
                out,
                "  {:<20} notified {:>6}  reminders {:>6}  completed {:>6}",
                wave.name, wave.notified, wave.reminders, wave.completed
            );
        }
    }
    out
}

/// The JOBS and JOB FILES NOT LOADED sections of `render_status`.
fn render_jobs(out: &mut String, report: &StatusReport) {
    use std::fmt::Write;
    if !report.jobs.is_empty() {
        let _ = writeln!(out, "JOBS");
        for job in &report.jobs {
            let note = match (job.enabled, &job.file) {
                (Some(false), _) => "  (disabled)",
                (_, None) => "  (no job file here)",
                _ => "",
            };
            let _ = writeln!(
                out,
                "  {:<20} {:<8} last {:<22} {:<9} next {:<22} fires {}{note}",
                job.name,
                job.command.as_deref().unwrap_or("-"),
                job.last_fire.as_deref().unwrap_or("-"),
                job.last_outcome.map_or("-", FireStatus::as_str),
                job.next_fire.as_deref().unwrap_or("-"),
                job.fires,
            );
            if let (Some(outcome), Some(detail)) = (job.last_outcome, &job.last_detail)
                && shows_detail(outcome)
            {
                let _ = writeln!(out, "      {detail}");
            }
        }
    }
    if !report.job_errors.is_empty() {
        let _ = writeln!(out, "JOB FILES NOT LOADED");
        for error in &report.job_errors {
            let seen = match (&error.host, &error.recorded_at) {
                (Some(host), Some(at)) => format!("  (serve on {host}, {at})"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {}: {}: {}{seen}",
                error.file, error.field, error.reason
            );
        }
    }
}

/// Whether a job's last fire has a detail worth a line: why it failed or was skipped.
fn shows_detail(outcome: FireStatus) -> bool {
    match outcome {
        FireStatus::Failed | FireStatus::Skipped => true,
        FireStatus::Running | FireStatus::Succeeded => false,
    }
}
