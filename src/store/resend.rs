//! `payout resend` in the store: a closed period's statement queued to those of a partner's
//! current recipients that have no outbox row of it yet, and the resend recorded, in one
//! transaction. The outbox's unique key (kind, partner, period, recipient) is what makes it
//! exactly once per recipient; addresses are compared ignoring case, as the close does.

use sqlx::Row;

use super::{OutboxMessage, Store, StoreError, StoreResult};
use crate::domain::status::OutboxKind;

/// The outbox kind of a statement email.
const STATEMENT_KIND: &str = OutboxKind::Statement.as_str();
/// How many resends `status` lists.
pub const RECENT_RESENDS: i64 = 20;

/// A resend to record: who asked, for which statement, to whom it should go now.
#[derive(Debug, Clone)]
pub struct ResendRequest<'a> {
    pub period: &'a str,
    pub partner_id: &'a str,
    pub requested_by: &'a str,
    /// The partner's current recipients, (address, name).
    pub recipients: &'a [(String, String)],
}

/// What a resend queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResendOutcome {
    /// Addresses queued now.
    pub queued: Vec<String>,
    /// Current recipients that already have the statement sent, queued or failed.
    pub already_had: Vec<String>,
}

/// A recorded resend, as `status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResendStatus {
    pub period: String,
    pub partner_id: String,
    pub requested_by: String,
    /// RFC 3339.
    pub requested_at: String,
    pub queued: i64,
    pub already_had: i64,
    pub recipients: Vec<String>,
}

impl Store {
    /// Queues the statement of `request.partner_id` for `request.period` to each of
    /// `request.recipients` without an outbox row for it yet, and records the resend; one
    /// transaction. The statement must exist (the period is closed).
    pub async fn resend_statement(&self, request: ResendRequest<'_>) -> StoreResult<ResendOutcome> {
        let mut tx = self.pool().begin().await?;
        let existing: Vec<String> = sqlx::query(
            "SELECT recipient FROM outbox WHERE kind = $1 AND partner_id = $2 AND scope = $3",
        )
        .bind(STATEMENT_KIND.to_owned())
        .bind(request.partner_id.to_owned())
        .bind(request.period.to_owned())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
        let mut outcome = ResendOutcome {
            queued: Vec::new(),
            already_had: Vec::new(),
        };
        for (recipient, recipient_name) in request.recipients {
            if existing.iter().any(|e| e.eq_ignore_ascii_case(recipient)) {
                outcome.already_had.push(recipient.clone());
                continue;
            }
            let message = OutboxMessage {
                kind: OutboxKind::Statement,
                partner_id: request.partner_id.to_owned(),
                scope: request.period.to_owned(),
                recipient: recipient.clone(),
                recipient_name: recipient_name.clone(),
                // The statement itself is read from the store at send, as for the close.
                context: serde_json::json!({}),
            };
            // 0 when another resend queued it in the meantime: the unique key holds.
            match Self::insert_outbox(&mut tx, std::slice::from_ref(&message), self.now_ms())
                .await?
            {
                0 => outcome.already_had.push(recipient.clone()),
                _ => outcome.queued.push(recipient.clone()),
            }
        }
        let recipients = serde_json::to_string(&outcome.queued)
            .map_err(|e| StoreError::Corrupt(format!("resend recipients: {e}")))?;
        sqlx::query(
            "INSERT INTO resends (period, partner_id, requested_by, requested_at_ms, queued, already_had, recipients) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(request.period.to_owned())
        .bind(request.partner_id.to_owned())
        .bind(request.requested_by.to_owned())
        .bind(self.now_ms())
        .bind(outcome.queued.len() as i64)
        .bind(outcome.already_had.len() as i64)
        .bind(recipients)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// The latest resends, latest first.
    pub async fn recent_resends(&self) -> StoreResult<Vec<ResendStatus>> {
        let rows = sqlx::query(
            "SELECT period, partner_id, requested_by, requested_at_ms, queued, already_had, recipients \
             FROM resends ORDER BY requested_at_ms DESC, id DESC LIMIT $1",
        )
        .bind(RECENT_RESENDS)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let recipients: String = row.try_get(6)?;
                Ok(ResendStatus {
                    period: row.try_get(0)?,
                    partner_id: row.try_get(1)?,
                    requested_by: row.try_get(2)?,
                    requested_at: super::status::rfc3339(row.try_get(3)?),
                    queued: row.try_get(4)?,
                    already_had: row.try_get(5)?,
                    recipients: serde_json::from_str(&recipients)
                        .map_err(|e| StoreError::Corrupt(format!("resend recipients: {e}")))?,
                })
            })
            .collect()
    }
}
