//! `payout status`: periods, runs, exceptions and the outbox at a glance, read from the store.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::resend::ResendStatus;
use super::{Store, StoreError, StoreResult, retried_reasons_sql};
use crate::domain::master::InputFile;
use crate::domain::money::{Currency, Payable};
use crate::domain::reasons::RejectReason;
use crate::domain::status::{FireStatus, OutboxKind, RunOutcome};

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

/// A published draft: its run, fingerprint and start.
#[derive(Debug, Clone)]
pub struct DraftRecord {
    pub run_id: String,
    pub fingerprint: String,
    pub started_at_ms: i64,
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
    pub outcome: RunOutcome,
    pub detail: Option<String>,
    pub inputs: Vec<InputStatus>,
    /// How many warnings the run recorded (listed for the latest run in `warnings`).
    pub warnings: u64,
}

/// A warning of the latest run: input it read past without using (`ingest::warning`).
#[derive(Debug, Serialize)]
pub struct WarningStatus {
    pub run_id: String,
    pub file: String,
    pub line: Option<u64>,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub periods: Vec<PeriodStatus>,
    pub runs: Vec<RunStatus>,
    /// The warnings of the latest run, in the order it found them.
    pub warnings: Vec<WarningStatus>,
    /// Open exceptions by reason code.
    pub exceptions: BTreeMap<String, u64>,
    /// Partners missing from partners.csv whose money the store keeps (`PARTNER_MISSING`), as
    /// the latest run found them.
    pub partners_missing: Vec<MissingPartnerStatus>,
    /// Outbox messages by status (queued, sent, failed).
    pub outbox: BTreeMap<String, u64>,
    /// Messages that failed for good, with the server's reply or the reason.
    pub failed_messages: Vec<FailedMessage>,
    /// Migration waves: partners notified, reminders sent, partners completed.
    pub waves: Vec<WaveStatus>,
    /// Scheduled jobs: every job with a file in the jobs folder or known to the store (filled
    /// by the command layer, which knows the jobs folder).
    pub jobs: Vec<JobStatus>,
    /// Job files that could not be loaded: here, or by a `serve` when it started.
    pub job_errors: Vec<JobFileErrorStatus>,
    /// `payout resend` requests, latest first: who, when, what was queued.
    pub resends: Vec<ResendStatus>,
}

#[derive(Debug, Serialize)]
pub struct JobStatus {
    pub name: String,
    /// From the job file here, else as the scheduler recorded it; null when neither is known.
    pub command: Option<String>,
    /// From the job file here; null when the file is not available here.
    pub enabled: Option<bool>,
    /// RFC 3339 scheduled time of the latest recorded fire.
    pub last_fire: Option<String>,
    /// RFC 3339 scheduled time of the next fire; null when disabled or the job file is not here.
    pub next_fire: Option<String>,
    /// Fires recorded in the store.
    pub fires: i64,
    /// The latest recorded fire's outcome.
    pub last_outcome: Option<FireStatus>,
    /// What that fire's command reported: its error when failed, why it was skipped.
    pub last_detail: Option<String>,
    /// The job file read here; null when only the store knows the job.
    pub file: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct JobFileErrorStatus {
    pub file: String,
    /// The field at fault (`file` or `folder` when it is the whole file or the folder).
    pub field: String,
    pub reason: String,
    /// The host of the `serve` that recorded it; null when found by this `status`.
    pub host: Option<String>,
    /// RFC 3339 time it was recorded; null when found by this `status`.
    pub recorded_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MissingPartnerStatus {
    pub partner_id: String,
    /// The balances and lines kept, with their currency.
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct FailedMessage {
    pub id: i64,
    pub kind: OutboxKind,
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

/// A period's totals in one currency, from its statements.
struct Totals {
    partners: u64,
    payable: Payable,
    held: Payable,
    carried: Payable,
}

/// Adds a stored amount; a corrupt one is an error, never a silent zero.
fn add(text: &str, currency: Currency, to: &mut Payable) -> StoreResult<()> {
    let amount = super::parse_payable(text, currency)?;
    *to = to
        .checked_add(amount)
        .map_err(|e| StoreError::Corrupt(format!("statement totals: {e}")))?;
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
        let mut totals: BTreeMap<(String, String), Totals> = BTreeMap::new();
        for row in sqlx::query("SELECT period, currency, payable, held, carried FROM statements")
            .fetch_all(pool)
            .await?
        {
            let code: String = row.try_get(1)?;
            let currency = super::parse_currency(&code)?;
            let zero = Payable::zero(currency)
                .map_err(|e| StoreError::Corrupt(format!("statement currency: {e}")))?;
            let entry = totals.entry((row.try_get(0)?, code)).or_insert(Totals {
                partners: 0,
                payable: zero,
                held: zero,
                carried: zero,
            });
            entry.partners += 1;
            add(&row.try_get::<String, _>(2)?, currency, &mut entry.payable)?;
            add(&row.try_get::<String, _>(3)?, currency, &mut entry.held)?;
            add(&row.try_get::<String, _>(4)?, currency, &mut entry.carried)?;
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
                .map(|((_, currency), t)| CurrencyTotals {
                    currency: currency.clone(),
                    partners: t.partners,
                    payable: t.payable.to_string(),
                    held: t.held.to_string(),
                    carried: t.carried.to_string(),
                })
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
            let outcome: String = row.try_get(5)?;
            let inputs = sqlx::query("SELECT file, sha256 FROM run_inputs WHERE run_id = $1 ORDER BY file")
                .bind(id.clone())
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok(InputStatus { file: r.try_get(0)?, sha256: r.try_get(1)? }))
                .collect::<StoreResult<Vec<_>>>()?;
            let warnings = sqlx::query("SELECT COUNT(*) FROM run_warnings WHERE run_id = $1")
                .bind(id.clone())
                .fetch_one(pool)
                .await?
                .try_get::<i64, _>(0)? as u64;
            runs.push(RunStatus {
                id,
                command: row.try_get(1)?,
                period: row.try_get(2)?,
                started_at: rfc3339(started),
                duration_ms: finished.map(|f| f - started),
                outcome: RunOutcome::parse(&outcome)
                    .ok_or_else(|| StoreError::Corrupt(format!("run outcome `{outcome}`")))?,
                detail: row.try_get::<Option<String>, _>(6)?.filter(|d| !d.is_empty()),
                inputs,
                warnings,
            });
        }
        let mut warnings = Vec::new();
        if let Some(latest) = runs.first() {
            for row in sqlx::query(
                "SELECT file, line, message FROM run_warnings WHERE run_id = $1 ORDER BY seq",
            )
            .bind(latest.id.clone())
            .fetch_all(pool)
            .await?
            {
                warnings.push(WarningStatus {
                    run_id: latest.id.clone(),
                    file: row.try_get(0)?,
                    line: row.try_get::<Option<i64>, _>(1)?.map(|l| l as u64),
                    message: row.try_get(2)?,
                });
            }
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
        let mut partners_missing = Vec::new();
        for row in sqlx::query(
            "SELECT fields, detail FROM rejections WHERE status = 'open' AND reason = $1 ORDER BY id",
        )
        .bind(RejectReason::PartnerMissing.code().to_owned())
        .fetch_all(pool)
        .await?
        {
            let fields: Option<String> = row.try_get(0)?;
            let partner_id = fields
                .as_deref()
                .and_then(|f| serde_json::from_str::<serde_json::Value>(f).ok())
                .and_then(|f| f["partner_id"].as_str().map(str::to_owned))
                .ok_or_else(|| StoreError::Corrupt("PARTNER_MISSING row without its partner".into()))?;
            partners_missing.push(MissingPartnerStatus {
                partner_id,
                detail: row.try_get(1)?,
            });
        }
        let failed_messages = self.failed_messages().await?;
        let waves = self.wave_summary().await?;
        Ok(StatusReport {
            periods: periods.into_values().collect(),
            runs,
            warnings,
            exceptions,
            partners_missing,
            outbox,
            failed_messages,
            waves,
            jobs: Vec::new(),
            job_errors: Vec::new(),
            resends: self.recent_resends().await?,
        })
    }
}

impl Store {
    /// Failed messages with their reasons, for `status`.
    pub async fn failed_messages(&self) -> StoreResult<Vec<FailedMessage>> {
        let rows = sqlx::query("SELECT id, kind, partner_id, recipient, last_error FROM outbox WHERE status = 'failed' ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get(1)?;
                Ok(FailedMessage {
                    id: r.try_get(0)?,
                    kind: OutboxKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("outbox kind `{kind}`")))?,
                    partner_id: r.try_get(2)?,
                    recipient: r.try_get(3)?,
                    reason: r.try_get::<Option<String>, _>(4)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Per wave: partners notified, reminders sent, partners completed.
    pub async fn wave_summary(&self) -> StoreResult<Vec<WaveStatus>> {
        let rows = sqlx::query(
            "SELECT wave, CAST(SUM(CASE WHEN last_notified_on IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(reminders) AS BIGINT), CAST(SUM(CASE WHEN completed_on IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) \
             FROM migration_progress GROUP BY wave ORDER BY wave",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WaveStatus {
                    name: r.try_get(0)?,
                    notified: r.try_get(1)?,
                    reminders: r.try_get(2)?,
                    completed: r.try_get(3)?,
                })
            })
            .collect()
    }
}

impl Store {
    /// A digest of everything a draft depends on in the store: ingested segments, rejections
    /// and closes. Any ingest, retry or close changes it.
    /// `PARTNER_MISSING` rows are left out: they follow from the rest and the master data,
    /// and listing them must not make the draft that listed them look stale.
    pub async fn ledger_version(&self) -> super::StoreResult<String> {
        let row = sqlx::query(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM revenue_segments), \
                    (SELECT COALESCE(MAX(id), 0) FROM rejections WHERE reason <> $1), \
                    (SELECT COUNT(*) FROM rejections WHERE status = 'open' AND reason <> $1), \
                    (SELECT COUNT(*) FROM period_closes), \
                    (SELECT COALESCE(MAX(closed_at_ms), 0) FROM period_closes)",
        )
        .bind(RejectReason::PartnerMissing.code().to_owned())
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

    /// The latest successful draft of `period` with a fingerprint (what was published and
    /// reviewed), if any.
    pub async fn last_draft(&self, period: &str) -> StoreResult<Option<DraftRecord>> {
        let row = sqlx::query(
            "SELECT id, fingerprint, started_at_ms FROM runs WHERE command = 'run' AND period = $1 \
             AND outcome = 'succeeded' AND fingerprint IS NOT NULL ORDER BY started_at_ms DESC, id DESC LIMIT 1",
        )
        .bind(period.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(DraftRecord {
                run_id: r.try_get(0)?,
                fingerprint: r.try_get(1)?,
                started_at_ms: r.try_get(2)?,
            })
        })
        .transpose()
    }

    /// The input files a run recorded.
    pub async fn run_inputs(&self, run_id: &str) -> StoreResult<Vec<InputFile>> {
        sqlx::query("SELECT file, sha256 FROM run_inputs WHERE run_id = $1 ORDER BY file")
            .bind(run_id.to_owned())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(InputFile {
                    name: r.try_get(0)?,
                    sha256: r.try_get(1)?,
                })
            })
            .collect()
    }

    /// Retried rows (`RejectReason::is_retried`) ingested by runs after `draft`.
    pub async fn retried_rows_since(&self, draft: &DraftRecord) -> StoreResult<u64> {
        let sql = format!(
            "SELECT COUNT(*) FROM rejections WHERE status = 'resolved' AND reason IN ({}) \
             AND resolved_run_id IN (SELECT id FROM runs WHERE started_at_ms >= $1 AND id <> $2)",
            retried_reasons_sql()
        );
        let row = sqlx::query(&sql)
            .bind(draft.started_at_ms)
            .bind(draft.run_id.clone())
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>(0)? as u64)
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
