//! The email outbox: rows are queued in the same transaction as the decision that causes them,
//! unique on (kind, partner, scope, recipient); senders claim rows, so several `payout send`
//! processes deliver each message once; a claim left by a sender that is provably gone (see
//! `lease.rs`) is released at once, any other when it expires.

use sqlx::Row;

use super::insert::InsertInto;
use super::lease::{ProcessIdentity, holder_is_gone};
use super::{Store, StoreError, StoreResult};
pub use crate::domain::outbox::{ClaimedMessage, DeliveryOutcome, WaveProgress};
use crate::domain::statement::{StatementLineRecord, StatementRecord};
use crate::domain::status::{OutboxKind, OutboxStatus};

/// An email to queue (delivered by `payout send`). Its key, (kind, partner, scope,
/// recipient), is unique in the outbox: queueing it twice is a no-op.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub kind: OutboxKind,
    pub partner_id: String,
    pub scope: String,
    pub recipient: String,
    pub recipient_name: String,
    /// What the template needs beyond the stored statement (partner name, wave, …).
    pub context: serde_json::Value,
}

const OUTBOX: InsertInto = InsertInto {
    table: "outbox",
    columns: &[
        "kind",
        "partner_id",
        "scope",
        "recipient",
        "recipient_name",
        "message_id",
        "status",
        "created_at_ms",
        "context",
    ],
    suffix: "ON CONFLICT (kind, partner_id, scope, recipient) DO NOTHING",
};

impl Store {
    pub(crate) async fn insert_outbox(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        messages: &[OutboxMessage],
        created_ms: i64,
    ) -> StoreResult<u64> {
        OUTBOX
            .execute(tx, messages, |mut row, message| {
                row.push_bind(message.kind.as_str())
                    .push_bind(message.partner_id.clone())
                    .push_bind(message.scope.clone())
                    .push_bind(message.recipient.clone())
                    .push_bind(message.recipient_name.clone())
                    // Stable for the life of the row: a resend after a crash is the same message.
                    .push_bind(format!("<{}@payout.invalid>", uuid::Uuid::new_v4()))
                    .push_bind(OutboxStatus::Queued.as_str())
                    .push_bind(created_ms)
                    .push_bind(message.context.to_string());
            })
            .await
    }

    /// Queues messages in one transaction; returns how many were new.
    pub async fn queue_messages(&self, messages: &[OutboxMessage]) -> StoreResult<u64> {
        let mut tx = self.pool().begin().await?;
        let inserted = Self::insert_outbox(&mut tx, messages, self.now_ms()).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Puts back the claims of senders whose process is provably gone (same boot and PID
    /// namespace, pid gone or reused); other claims wait for their expiry.
    pub async fn release_dead_claims(&self) -> StoreResult<u64> {
        let claimers =
            sqlx::query("SELECT DISTINCT claimed_by FROM outbox WHERE status = 'sending'")
                .fetch_all(self.pool())
                .await?;
        let mut released = 0;
        for row in claimers {
            let Some(claimer): Option<String> = row.try_get(0)? else {
                continue;
            };
            if holder_is_gone(&claimer) {
                released += sqlx::query("UPDATE outbox SET status = 'queued', claimed_by = NULL WHERE status = 'sending' AND claimed_by = $1")
                    .bind(claimer)
                    .execute(self.pool())
                    .await?
                    .rows_affected();
            }
        }
        Ok(released)
    }

    /// A claimer id: this process's identity (host, boot id, PID namespace, pid, start time)
    /// and a random part, so that claims of a dead process can be recognised.
    pub fn new_claimer() -> String {
        ProcessIdentity::current().holder_id()
    }

    /// Claims up to `limit` deliverable messages for `claimer` until `claim_ttl_ms` from now.
    pub async fn claim_messages(
        &self,
        claimer: &str,
        limit: i64,
        claim_ttl_ms: i64,
    ) -> StoreResult<Vec<ClaimedMessage>> {
        let now = self.now_ms();
        let deliverable = "((status = 'queued' AND next_attempt_at_ms <= $3) OR (status = 'sending' AND claim_expires_at_ms < $3))";
        let sql = format!(
            "UPDATE outbox SET status = 'sending', claimed_by = $1, claim_expires_at_ms = $2 \
             WHERE id IN (SELECT id FROM outbox WHERE {deliverable} ORDER BY id LIMIT $4) AND {deliverable} \
             RETURNING id, kind, partner_id, scope, recipient, recipient_name, message_id, context, attempts"
        );
        let rows = sqlx::query(&sql)
            .bind(claimer.to_owned())
            .bind(now + claim_ttl_ms)
            .bind(now)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                let context: String = row.try_get(7)?;
                Ok(ClaimedMessage {
                    id: row.try_get(0)?,
                    kind: stored_kind(row.try_get(1)?)?,
                    partner_id: row.try_get(2)?,
                    scope: row.try_get(3)?,
                    recipient: row.try_get(4)?,
                    recipient_name: row.try_get(5)?,
                    message_id: row.try_get(6)?,
                    context: serde_json::from_str(&context)
                        .map_err(|e| StoreError::Corrupt(format!("outbox context: {e}")))?,
                    attempts: row.try_get(8)?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    /// The earliest time a queued message may be tried again, if any is waiting.
    pub async fn next_retry_at(&self) -> StoreResult<Option<i64>> {
        let row = sqlx::query("SELECT MIN(next_attempt_at_ms) FROM outbox WHERE status = 'queued'")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Records several delivery outcomes in one transaction (one commit, not one per message).
    /// Only rows still claimed by `claimer` change.
    pub async fn record_deliveries(
        &self,
        claimer: &str,
        outcomes: &[(i64, DeliveryOutcome)],
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        let now = self.now_ms();
        for (id, outcome) in outcomes {
            let query = match outcome {
                DeliveryOutcome::Sent => sqlx::query(
                    "UPDATE outbox SET status = 'sent', sent_at_ms = $3, attempts = attempts + 1, claimed_by = NULL \
                     WHERE id = $1 AND claimed_by = $2",
                )
                .bind(*id)
                .bind(claimer.to_owned())
                .bind(now),
                DeliveryOutcome::Retry { next_attempt_at_ms, error } => sqlx::query(
                    "UPDATE outbox SET status = 'queued', attempts = attempts + 1, next_attempt_at_ms = $3, last_error = $4, \
                     claimed_by = NULL WHERE id = $1 AND claimed_by = $2",
                )
                .bind(*id)
                .bind(claimer.to_owned())
                .bind(*next_attempt_at_ms)
                .bind(error.clone()),
                DeliveryOutcome::Deferred { next_attempt_at_ms, error } => sqlx::query(
                    "UPDATE outbox SET status = 'queued', next_attempt_at_ms = $3, last_error = $4, \
                     claimed_by = NULL WHERE id = $1 AND claimed_by = $2",
                )
                .bind(*id)
                .bind(claimer.to_owned())
                .bind(*next_attempt_at_ms)
                .bind(error.clone()),
                DeliveryOutcome::Failed(error) => sqlx::query(
                    "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $3, claimed_by = NULL \
                     WHERE id = $1 AND claimed_by = $2",
                )
                .bind(*id)
                .bind(claimer.to_owned())
                .bind(error.clone()),
                DeliveryOutcome::Release => {
                    sqlx::query("UPDATE outbox SET status = 'queued', claimed_by = NULL WHERE id = $1 AND claimed_by = $2")
                        .bind(*id)
                        .bind(claimer.to_owned())
                }
            };
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A closed period's statement, as recorded by the close.
    pub async fn statement(
        &self,
        period: &str,
        partner_id: &str,
    ) -> StoreResult<Option<StatementRecord>> {
        let Some(row) = sqlx::query(
            "SELECT partner_name, program_id, program_name, currency, language, earned, adjustments, released, carried_in, \
             payable, carried, held, status, hold_reasons, pdf_sha256, \
             eligibility_reasons, enrolled_on, issued_on, issuer FROM statements WHERE period = $1 AND partner_id = $2",
        )
        .bind(period.to_owned())
        .bind(partner_id.to_owned())
        .fetch_optional(self.pool())
        .await?
        else {
            return Ok(None);
        };
        let lines = sqlx::query(
            "SELECT booking, product_category, line_currency, rate, lines, revenue, earning, billing_month, fx_rate, fx_period \
             FROM statement_lines \
             WHERE period = $1 AND partner_id = $2 ORDER BY position",
        )
        .bind(period.to_owned())
        .bind(partner_id.to_owned())
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|l| {
            Ok(StatementLineRecord {
                booking: l.try_get(0)?,
                product_category: l.try_get(1)?,
                line_currency: l.try_get(2)?,
                rate: l.try_get(3)?,
                lines: l.try_get(4)?,
                revenue: l.try_get(5)?,
                earning: l.try_get(6)?,
                billing_month: l.try_get(7)?,
                fx_rate: l.try_get(8)?,
                fx_period: l.try_get(9)?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some(StatementRecord {
            period: period.to_owned(),
            partner_id: partner_id.to_owned(),
            partner_name: row.try_get(0)?,
            program_id: row.try_get(1)?,
            program_name: row.try_get(2)?,
            currency: row.try_get(3)?,
            language: row.try_get(4)?,
            earned: row.try_get(5)?,
            adjustments: row.try_get(6)?,
            released: row.try_get(7)?,
            carried_in: row.try_get(8)?,
            payable: row.try_get(9)?,
            carried: row.try_get(10)?,
            held: row.try_get(11)?,
            status: row.try_get(12)?,
            hold_reasons: row.try_get(13)?,
            lines,
            pdf_sha256: row.try_get(14)?,
            eligibility_reasons: row.try_get(15)?,
            enrolled_on: row.try_get(16)?,
            issued_on: row.try_get(17)?,
            issuer: row
                .try_get::<Option<String>, _>(18)?
                .map(|text| {
                    serde_json::from_str(&text)
                        .map_err(|e| StoreError::Corrupt(format!("statement issuer: {e}")))
                })
                .transpose()?,
        }))
    }

    // ---- migration waves --------------------------------------------------------------

    pub async fn wave_progress(&self, partner_id: &str) -> StoreResult<Option<WaveProgress>> {
        let row = sqlx::query("SELECT wave, reminders, last_notified_on, completed_on FROM migration_progress WHERE partner_id = $1")
            .bind(partner_id.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(WaveProgress {
                wave: r.try_get(0)?,
                reminders: r.try_get(1)?,
                last_notified_on: r.try_get(2)?,
                completed_on: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// Records a migration email (`reminder` 0 = the first notice) and queues it, in one
    /// transaction.
    pub async fn record_migration_notice(
        &self,
        partner_id: &str,
        wave: &str,
        reminder: i64,
        today: &str,
        message: &OutboxMessage,
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO migration_progress (partner_id, wave, notified_at_ms, reminders, last_notified_on) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (partner_id) DO UPDATE SET wave = excluded.wave, reminders = excluded.reminders, last_notified_on = excluded.last_notified_on",
        )
        .bind(partner_id.to_owned())
        .bind(wave.to_owned())
        .bind(self.now_ms())
        .bind(reminder)
        .bind(today.to_owned())
        .execute(&mut *tx)
        .await?;
        Self::insert_outbox(&mut tx, std::slice::from_ref(message), self.now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn record_migration_complete(
        &self,
        partner_id: &str,
        wave: &str,
        today: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO migration_progress (partner_id, wave, completed_on) VALUES ($1, $2, $3) \
             ON CONFLICT (partner_id) DO UPDATE SET completed_on = excluded.completed_on WHERE migration_progress.completed_on IS NULL",
        )
        .bind(partner_id.to_owned())
        .bind(wave.to_owned())
        .bind(today.to_owned())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

impl Store {
    pub async fn count_outbox(&self, status: OutboxStatus) -> StoreResult<u64> {
        let row = sqlx::query("SELECT COUNT(*) FROM outbox WHERE status = $1")
            .bind(status.as_str())
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>(0)? as u64)
    }
}

/// An outbox kind as read back; anything else is corrupt data.
fn stored_kind(text: String) -> StoreResult<OutboxKind> {
    OutboxKind::parse(&text).ok_or_else(|| StoreError::Corrupt(format!("outbox kind `{text}`")))
}
