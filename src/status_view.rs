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
        if let Some(changed) = p.changed_partners {
            let _ = writeln!(
                out,
                "      {changed} partner(s) changed since the previous draft (changes.csv)"
            );
        }
        if let Some(a) = &p.approval {
            let _ = writeln!(
                out,
                "      approved by {} at {} (draft {}, fingerprint {})",
                a.approved_by, a.approved_at, a.draft_run_id, a.draft_fingerprint
            );
        }
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
                input.sha256.get(..16).unwrap_or(&input.sha256),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::status::{OutboxKind, RunOutcome};
    use crate::store::{
        CurrencyTotals, FailedMessage, InputStatus, JobFileErrorStatus, JobStatus,
        MissingPartnerStatus, PeriodStatus, ResendStatus, RunStatus, WarningStatus, WaveStatus,
    };

    fn job(name: &str, outcome: Option<FireStatus>, file: Option<&str>) -> JobStatus {
        JobStatus {
            name: name.into(),
            command: Some("close".into()),
            enabled: Some(true),
            last_fire: Some("2026-11-01T02:00:00Z".into()),
            next_fire: Some("2026-12-01T02:00:00Z".into()),
            fires: 3,
            last_outcome: outcome,
            last_detail: Some("why it ended so".into()),
            file: file.map(str::to_owned),
        }
    }

    /// Every section, so that a change to any line of the text shows here.
    #[test]
    fn every_section_renders_as_the_terminal_shows_it() {
        let report = StatusReport {
            periods: vec![
                PeriodStatus {
                    period: "2026-10".into(),
                    state: "closed".into(),
                    closed_at: Some("2026-11-02T09:00:00Z".into()),
                    revenue_lines: 1234,
                    totals: vec![CurrencyTotals {
                        currency: "EUR".into(),
                        partners: 2,
                        payable: "10.00".into(),
                        held: "1.00".into(),
                        carried: "0.50".into(),
                    }],
                    changed_partners: Some(0),
                    approval: Some(crate::store::ApprovalStatus {
                        approved_by: "Ana Díaz".into(),
                        approved_at: "2026-11-02T08:59:00Z".into(),
                        draft_run_id: "run-1".into(),
                        draft_fingerprint: "0.1.0|2026-10|1/2/3/4/5".into(),
                    }),
                },
                PeriodStatus {
                    period: "2026-11".into(),
                    state: "open".into(),
                    closed_at: None,
                    revenue_lines: 7,
                    totals: vec![],
                    changed_partners: Some(3),
                    approval: None,
                },
            ],
            runs: vec![
                RunStatus {
                    id: "run-2".into(),
                    command: "close".into(),
                    period: Some("2026-10".into()),
                    started_at: "2026-11-02T09:00:00Z".into(),
                    duration_ms: Some(1530),
                    outcome: RunOutcome::Failed,
                    detail: Some("closing period 2026-10: no".into()),
                    inputs: vec![InputStatus {
                        file: "revenue/a.csv".into(),
                        sha256: "0123456789abcdef0123".into(),
                    }],
                    warnings: 1,
                },
                RunStatus {
                    id: "run-1".into(),
                    command: "run".into(),
                    period: None,
                    started_at: "2026-11-01T09:00:00Z".into(),
                    duration_ms: None,
                    outcome: RunOutcome::Running,
                    detail: None,
                    inputs: vec![],
                    warnings: 0,
                },
            ],
            warnings: vec![WarningStatus {
                run_id: "run-2".into(),
                file: "users.csv".into(),
                line: Some(4),
                message: "partner P9 is not in partners.csv".into(),
            }],
            exceptions: BTreeMap::from([("BAD_AMOUNT".to_owned(), 2)]),
            partners_missing: vec![MissingPartnerStatus {
                partner_id: "P9".into(),
                detail: "held 1.00 EUR".into(),
            }],
            outbox: BTreeMap::from([("failed".to_owned(), 1), ("sent".to_owned(), 4)]),
            failed_messages: vec![FailedMessage {
                id: 5,
                kind: OutboxKind::Statement,
                partner_id: "P1".into(),
                recipient: "a@example.com".into(),
                reason: "550 no such user".into(),
            }],
            waves: vec![WaveStatus {
                name: "wave-1".into(),
                notified: 10,
                reminders: 3,
                completed: 2,
            }],
            jobs: vec![
                job(
                    "nightly",
                    Some(FireStatus::Skipped),
                    Some("jobs/nightly.toml"),
                ),
                job("monthly", Some(FireStatus::Succeeded), None),
                job("never", None, Some("jobs/never.toml")),
            ],
            job_errors: vec![JobFileErrorStatus {
                file: "/j/bad.toml".into(),
                field: "schedule".into(),
                reason: "not a cron expression".into(),
                host: Some("h1".into()),
                recorded_at: Some("2026-11-01T00:00:00Z".into()),
            }],
            resends: vec![ResendStatus {
                period: "2026-10".into(),
                partner_id: "P1".into(),
                requested_by: "ops".into(),
                requested_at: "2026-11-03T10:00:00Z".into(),
                queued: 1,
                already_had: 0,
                recipients: vec!["b@example.com".into()],
            }],
        };
        let expected = "\
PERIODS
  2026-10  closed        1234 lines  EUR 2 partners payable 10.00 held 1.00 carried 0.50
      0 partner(s) changed since the previous draft (changes.csv)
      approved by Ana Díaz at 2026-11-02T08:59:00Z (draft run-1, fingerprint 0.1.0|2026-10|1/2/3/4/5)
  2026-11  open             7 lines  
      3 partner(s) changed since the previous draft (changes.csv)
RUNS (latest first)
  2026-11-02T09:00:00Z  close  2026-10  failed        1.5s  1 input file(s), 1 warning(s)  closing period 2026-10: no
      0123456789abcdef  revenue/a.csv
  2026-11-01T09:00:00Z  run    -        running          -  0 input file(s)
WARNINGS (latest run run-2)
  users.csv: line 4: partner P9 is not in partners.csv
OPEN EXCEPTIONS
  BAD_AMOUNT           2
PARTNERS MISSING FROM partners.csv (money kept in the store)
  P9           held 1.00 EUR
OUTBOX
  queued   0
  sending  0
  sent     4
  failed   1
  failed #5 statement P1 to a@example.com: 550 no such user
RESENDS (latest first)
  2026-11-03T10:00:00Z  2026-10 partner P1 by ops: 1 queued (b@example.com), 0 already had it
JOBS
  nightly              close    last 2026-11-01T02:00:00Z   skipped   next 2026-12-01T02:00:00Z   fires 3
      why it ended so
  monthly              close    last 2026-11-01T02:00:00Z   succeeded next 2026-12-01T02:00:00Z   fires 3  (no job file here)
  never                close    last 2026-11-01T02:00:00Z   -         next 2026-12-01T02:00:00Z   fires 3
JOB FILES NOT LOADED
  /j/bad.toml: schedule: not a cron expression  (serve on h1, 2026-11-01T00:00:00Z)
MIGRATION WAVES
  wave-1               notified     10  reminders      3  completed      2
";
        assert_eq!(render_status(&report), expected);

        // `--json` carries the statuses as their stored text, as before they were enums.
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["runs"][0]["outcome"], "failed");
        assert_eq!(json["runs"][1]["outcome"], "running");
        assert_eq!(json["jobs"][0]["last_outcome"], "skipped");
        assert_eq!(json["jobs"][2]["last_outcome"], serde_json::Value::Null);
        assert_eq!(json["failed_messages"][0]["kind"], "statement");
    }
}
