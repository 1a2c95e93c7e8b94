//! `payout status`: periods, runs, exceptions and the outbox at a glance, read from the store.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::Row;

use super::resend::ResendStatus;
use super::{Store, StoreResult};

/// How many recent runs `status` shows.
const RECENT_RUNS: i64 = 10;

#[derive(Debug, Serialize)]
pub struct CurrencyTotals {
    pub currency: String,
    pub partners: u64,
    pub payable: String,
    pub held: String,
    pub carried: String,
}

#[derive(Debug, Serialize)]
pub struct PeriodStatus {
    pub period: String,
    /// `closed`, or `open` for a month with revenue after the last close.
    pub state: String,
    pub closed_at: Option<String>,
    pub revenue_lines: u64,
    pub totals: Vec<CurrencyTotals>,
}

#[derive(Debug, Serialize)]
pub struct InputStatus {
    pub file: String,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct RunStatus {
    pub id: String,
    pub command: String,
    pub period: Option<String>,
    pub started_at: String,
    pub duration_ms: Option<i64>,
    pub outcome: String,
    pub detail: Option<String>,
    pub inputs: Vec<InputStatus>,
}

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub periods: Vec<PeriodStatus>,
    pub runs: Vec<RunStatus>,
    /// Open exceptions by reason code.
    pub exceptions: BTreeMap<String, u64>,
    /// Outbox messages by status (queued, sent, failed).
    pub outbox: BTreeMap<String, u64>,
    /// Messages that failed for good, with the server's reply or the reason.
    pub failed_messages: Vec<FailedMessage>,
    /// Migration waves: partners notified, reminders sent, partners completed.
    pub waves: Vec<WaveStatus>,
    /// Scheduled jobs (filled by the command layer, which knows the jobs folder).
    pub jobs: Vec<JobStatus>,
    /// `payout resend` requests, latest first: who, when, what was queued.
    pub resends: Vec<ResendStatus>,
}

#[derive(Debug, Serialize)]
pub struct JobStatus {
    pub name: String,
    pub command: String,
    pub enabled: bool,
    /// RFC 3339 scheduled time of the latest recorded fire.
    pub last_fire: Option<String>,
    /// RFC 3339 scheduled time of the next fire.
    pub next_fire: Option<String>,
    /// Fires recorded in the store.
    pub fires: i64,
}

#[derive(Debug, Serialize)]
pub struct FailedMessage {
    pub id: i64,
    pub kind: String,
    pub partner_id: String,
    pub recipient: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct WaveStatus {
    pub name: String,
    pub notified: i64,
    pub reminders: i64,
    pub completed: i64,
}

pub(super) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Adds a stored amount; a corrupt one is an error, never a silent zero.
fn add(text: String, to: &mut Decimal) -> StoreResult<()> {
    *to += super::parse_decimal(text)?;
    Ok(())
}

impl Store {
    pub async fn status_report(&self) -> StoreResult<StatusReport> {
        let pool = self.pool();
        let mut lines_by_month: BTreeMap<String, u64> = BTreeMap::new();
        for row in sqlx::query("SELECT billing_month, CAST(SUM(rows) AS BIGINT) FROM segment_months WHERE late = 0 GROUP BY billing_month")
            .fetch_all(pool)
            .await?
        {
            lines_by_month.insert(row.try_get(0)?, row.try_get::<i64, _>(1)? as u64);
        }
        let mut totals: BTreeMap<(String, String), (u64, Decimal, Decimal, Decimal)> =
            BTreeMap::new();
        for row in sqlx::query("SELECT period, currency, payable, held, carried FROM statements")
            .fetch_all(pool)
            .await?
        {
            let entry = totals
                .entry((row.try_get(0)?, row.try_get(1)?))
                .or_default();
            entry.0 += 1;
            add(row.try_get(2)?, &mut entry.1)?;
            add(row.try_get(3)?, &mut entry.2)?;
            add(row.try_get(4)?, &mut entry.3)?;
        }
        let mut periods: BTreeMap<String, PeriodStatus> = BTreeMap::new();
        for row in sqlx::query("SELECT period, closed_at_ms FROM period_closes")
            .fetch_all(pool)
            .await?
        {
            let period: String = row.try_get(0)?;
            let totals = totals
                .range((period.clone(), String::new())..)
                .take_while(|((p, _), _)| *p == period)
                .map(
                    |((_, currency), (partners, payable, held, carried))| CurrencyTotals {
                        currency: currency.clone(),
                        partners: *partners,
                        payable: payable.to_string(),
                        held: held.to_string(),
                        carried: carried.to_string(),
                    },
                )
                .collect();
            periods.insert(
                period.clone(),
                PeriodStatus {
                    revenue_lines: lines_by_month.get(&period).copied().unwrap_or(0),
                    period,
                    state: "closed".into(),
                    closed_at: Some(rfc3339(row.try_get(1)?)),
                    totals,
                },
            );
        }
        let last_closed = periods.keys().next_back().cloned().unwrap_or_default();
        for (month, lines) in lines_by_month.into_iter().filter(|(m, _)| *m > last_closed) {
            periods.insert(
                month.clone(),
                PeriodStatus {
                    period: month,
                    state: "open".into(),
                    closed_at: None,
                    revenue_lines: lines,
                    totals: vec![],
                },
            );
        }

        let mut runs = Vec::new();
        for row in sqlx::query(
            "SELECT id, command, period, started_at_ms, finished_at_ms, outcome, detail FROM runs ORDER BY started_at_ms DESC, id LIMIT $1",
        )
        .bind(RECENT_RUNS)
        .fetch_all(pool)
        .await?
        {
            let id: String = row.try_get(0)?;
            let started: i64 = row.try_get(3)?;
            let finished: Option<i64> = row.try_get(4)?;
            let inputs = sqlx::query("SELECT file, sha256 FROM run_inputs WHERE run_id = $1 ORDER BY file")
                .bind(id.clone())
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok(InputStatus { file: r.try_get(0)?, sha256: r.try_get(1)? }))
                .collect::<StoreResult<Vec<_>>>()?;
            runs.push(RunStatus {
                id,
                command: row.try_get(1)?,
                period: row.try_get(2)?,
                started_at: rfc3339(started),
                duration_ms: finished.map(|f| f - started),
                outcome: row.try_get(5)?,
                detail: row.try_get::<Option<String>, _>(6)?.filter(|d| !d.is_empty()),
                inputs,
            });
        }

        let count_by = async |sql: &str| -> StoreResult<BTreeMap<String, u64>> {
            let mut counts = BTreeMap::new();
            for row in sqlx::query(sql).fetch_all(pool).await? {
                counts.insert(row.try_get(0)?, row.try_get::<i64, _>(1)? as u64);
            }
            Ok(counts)
        };
        let exceptions = count_by(
            "SELECT reason, COUNT(*) FROM rejections WHERE status = 'open' GROUP BY reason",
        )
        .await?;
        let outbox = count_by("SELECT status, COUNT(*) FROM outbox GROUP BY status").await?;
        let failed_messages = self
            .failed_messages()
            .await?
            .into_iter()
            .map(|(id, kind, partner_id, recipient, reason)| FailedMessage {
                id,
                kind,
                partner_id,
                recipient,
                reason,
            })
            .collect();
        let waves = self
            .wave_summary()
            .await?
            .into_iter()
            .map(|(name, notified, reminders, completed)| WaveStatus {
                name,
                notified,
                reminders,
                completed,
            })
            .collect();
        Ok(StatusReport {
            periods: periods.into_values().collect(),
            runs,
            exceptions,
            outbox,
            failed_messages,
            waves,
            jobs: Vec::new(),
            resends: self.recent_resends().await?,
        })
    }
}

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
            "  {}  {:<6} {:<8} {:<10} {:>7}  {} input file(s){}",
            r.started_at,
            r.command,
            r.period.as_deref().unwrap_or("-"),
            r.outcome,
            duration,
            r.inputs.len(),
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
    let _ = writeln!(out, "OPEN EXCEPTIONS");
    if report.exceptions.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for (reason, count) in &report.exceptions {
        let _ = writeln!(out, "  {reason:<20} {count}");
    }
    let _ = writeln!(out, "OUTBOX");
    for status in ["queued", "sending", "sent", "failed"] {
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
    if !report.jobs.is_empty() {
        let _ = writeln!(out, "JOBS");
        for job in &report.jobs {
            let _ = writeln!(
                out,
                "  {:<20} {:<8} last {:<22} next {:<22} fires {}{}",
                job.name,
                job.command,
                job.last_fire.as_deref().unwrap_or("-"),
                job.next_fire.as_deref().unwrap_or("-"),
                job.fires,
                if job.enabled { "" } else { "  (disabled)" }
            );
        }
    }
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

impl Store {
    /// A digest of everything a draft depends on in the store: ingested segments, rejections
    /// and closes. Any ingest, retry or close changes it.
    pub async fn ledger_version(&self) -> super::StoreResult<String> {
        let row = sqlx::query(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM revenue_segments), \
                    (SELECT COALESCE(MAX(id), 0) FROM rejections), \
                    (SELECT COUNT(*) FROM rejections WHERE status = 'open'), \
                    (SELECT COUNT(*) FROM period_closes), \
                    (SELECT COALESCE(MAX(closed_at_ms), 0) FROM period_closes)",
        )
        .fetch_one(self.pool())
        .await?;
        let parts: Vec<i64> = (0..5)
            .map(|i| row.try_get::<i64, _>(i))
            .collect::<Result<_, _>>()?;
        Ok(parts
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join("/"))
    }

    /// The fingerprint of the latest successful draft of `period`, if any.
    pub async fn last_draft_fingerprint(&self, period: &str) -> super::StoreResult<Option<String>> {
        let row = sqlx::query(
            "SELECT fingerprint FROM runs WHERE command = 'run' AND period = $1 AND outcome = 'succeeded' \
             ORDER BY started_at_ms DESC LIMIT 1",
        )
        .bind(period.to_owned())
        .fetch_optional(self.pool())
        .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>(0))
            .transpose()?
            .flatten())
    }

    pub async fn set_fingerprint(&self, run_id: &str, fingerprint: &str) -> super::StoreResult<()> {
        sqlx::query("UPDATE runs SET fingerprint = $1 WHERE id = $2")
            .bind(fingerprint.to_owned())
            .bind(run_id.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
