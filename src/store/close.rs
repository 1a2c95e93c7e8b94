//! Closes in the store: the last closed period, balances carried between periods, and the
//! close transaction itself (SPEC §4): the `period_closes` row first (so a second closer waits
//! for it or finds it), then statements, balances, booking of late lines and the statement
//! emails, all committed at once. It writes what the ledger decided; it never computes it.

use std::collections::HashMap;

use sqlx::Row;

use super::insert::InsertInto;
use super::{
    OutboxMessage, Store, StoreError, StoreResult, parse_currency, parse_payable, parse_period_opt,
};
use crate::domain::balance::Balances;

use crate::domain::period::Period;
use crate::domain::review::CloseApproval;
use crate::domain::statement::StatementRecord;

const STATEMENTS: InsertInto = InsertInto {
    table: "statements",
    columns: &[
        "period",
        "partner_id",
        "partner_name",
        "program_id",
        "program_name",
        "language",
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
        "pdf_sha256",
        "eligibility_reasons",
        "enrolled_on",
        "issued_on",
        "issuer",
    ],
    suffix: "",
};

const STATEMENT_LINES: InsertInto = InsertInto {
    table: "statement_lines",
    columns: &[
        "period",
        "partner_id",
        "position",
        "booking",
        "product_category",
        "line_currency",
        "rate",
        "lines",
        "revenue",
        "earning",
        "billing_month",
        "fx_rate",
        "fx_period",
    ],
    suffix: "",
};

/// Statements whose lines are inserted per round of INSERTs (see `close_period`).
const STATEMENT_CHUNK: usize = 2_000;

/// What a close transaction found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseOutcome {
    Closed,
    AlreadyClosed,
    /// Another close changed the basis since the computation; compute again.
    BasisChanged,
}

/// Everything one close writes.
pub struct ClosePlan<'a> {
    pub period: Period,
    pub close_id: &'a str,
    pub run_id: &'a str,
    /// The last closed period the computation started from.
    pub basis: Option<Period>,
    pub statements: &'a [StatementRecord],
    pub booked_segments: &'a [i64],
    pub messages: &'a [OutboxMessage],
    /// Who approved the close (`--approved-by`), recorded in the same transaction.
    pub approval: Option<&'a CloseApproval>,
}

impl Store {
    pub async fn last_closed(&self) -> StoreResult<Option<Period>> {
        let row = sqlx::query("SELECT MAX(period) FROM period_closes")
            .fetch_one(&self.pool)
            .await?;
        parse_period_opt(row.try_get::<Option<String>, _>(0)?)
    }

    pub async fn close_id(&self, period: Period) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT close_id FROM period_closes WHERE period = $1")
            .bind(period.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    pub async fn balances(&self) -> StoreResult<HashMap<String, Balances>> {
        let rows = sqlx::query("SELECT partner_id, currency, held, carried FROM balances")
            .fetch_all(&self.pool)
            .await?;
        let mut balances = HashMap::new();
        for row in rows {
            let partner_id: String = row.try_get(0)?;
            let code: String = row.try_get(1)?;
            let currency = parse_currency(&code)?;
            let held = parse_payable(&row.try_get::<String, _>(2)?, currency)?;
            let carried = parse_payable(&row.try_get::<String, _>(3)?, currency)?;
            let stored = Balances::new(held, carried)
                .map_err(|e| StoreError::Corrupt(format!("balance of {partner_id}: {e}")))?;
            balances.insert(partner_id, stored);
        }
        Ok(balances)
    }

    /// Closes `period` in one transaction: the close record, statements, balance movements,
    /// booking of late lines and the statement emails (SPEC §4).
    pub async fn close_period(&self, close: ClosePlan<'_>) -> StoreResult<CloseOutcome> {
        let mut tx = self.pool.begin().await?;
        let period = close.period.to_string();
        let inserted = sqlx::query(
            "INSERT INTO period_closes (period, close_id, run_id, closed_at_ms, basis_period) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (period) DO NOTHING",
        )
        .bind(period.clone())
        .bind(close.close_id.to_owned())
        .bind(close.run_id.to_owned())
        .bind(self.now_ms())
        .bind(close.basis.map(|p| p.to_string()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(CloseOutcome::AlreadyClosed);
        }
        let row = sqlx::query("SELECT MAX(period) FROM period_closes WHERE period <> $1")
            .bind(period.clone())
            .fetch_one(&mut *tx)
            .await?;
        let basis_now = parse_period_opt(row.try_get::<Option<String>, _>(0)?)?;
        if basis_now != close.basis {
            tx.rollback().await?;
            return Ok(if basis_now.is_some_and(|b| b >= close.period) {
                CloseOutcome::AlreadyClosed
            } else {
                CloseOutcome::BasisChanged
            });
        }

        for record in close.statements {
            sqlx::query(
                "INSERT INTO balances (partner_id, currency, held, carried, period) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (partner_id) DO UPDATE SET currency = excluded.currency, held = excluded.held, \
                 carried = excluded.carried, period = excluded.period",
            )
            .bind(record.partner_id.clone())
            .bind(record.currency.clone())
            .bind(record.held.clone())
            .bind(record.carried.clone())
            .bind(period.clone())
            .execute(&mut *tx)
            .await?;
        }
        STATEMENTS
            .execute(&mut tx, close.statements, |mut row, record| {
                row.push_bind(period.clone())
                    .push_bind(record.partner_id.clone())
                    .push_bind(record.partner_name.clone())
                    .push_bind(record.program_id.clone())
                    .push_bind(record.program_name.clone())
                    .push_bind(record.language.clone())
                    .push_bind(record.currency.clone())
                    .push_bind(record.earned.clone())
                    .push_bind(record.adjustments.clone())
                    .push_bind(record.released.clone())
                    .push_bind(record.carried_in.clone())
                    .push_bind(record.payable.clone())
                    .push_bind(record.carried.clone())
                    .push_bind(record.held.clone())
                    .push_bind(record.status.clone())
                    .push_bind(record.hold_reasons.clone())
                    .push_bind(record.pdf_sha256.clone())
                    .push_bind(record.eligibility_reasons.clone())
                    .push_bind(record.enrolled_on.clone())
                    .push_bind(record.issued_on.clone())
                    .push_bind(
                        record
                            .issuer
                            .as_ref()
                            .map(|issuer| serde_json::json!(issuer).to_string()),
                    );
            })
            .await?;
        // A few thousand statements at a time: the INSERT builder holds every value of what it
        // is given until it is sent, and a close's statement lines are the bulk of its rows.
        for chunk in close.statements.chunks(STATEMENT_CHUNK) {
            let lines = chunk.iter().flat_map(|record| {
                record
                    .lines
                    .iter()
                    .enumerate()
                    .map(move |(position, line)| (record, position, line))
            });
            STATEMENT_LINES
                .execute(&mut tx, lines, |mut row, (record, position, line)| {
                    row.push_bind(period.clone())
                        .push_bind(record.partner_id.clone())
                        .push_bind(position as i64)
                        .push_bind(line.booking.clone())
                        .push_bind(line.product_category.clone())
                        .push_bind(line.line_currency.clone())
                        .push_bind(line.rate.clone())
                        .push_bind(line.lines)
                        .push_bind(line.revenue.clone())
                        .push_bind(line.earning.clone())
                        .push_bind(line.billing_month.clone())
                        .push_bind(line.fx_rate.clone())
                        .push_bind(line.fx_period.clone());
                })
                .await?;
        }
        for id in close.booked_segments {
            sqlx::query("UPDATE revenue_segments SET booked_period = $1 WHERE id = $2 AND late_rows > 0 AND booked_period IS NULL")
                .bind(period.clone())
                .bind(*id)
                .execute(&mut *tx)
                .await?;
        }
        Self::insert_outbox(&mut tx, close.messages, self.now_ms()).await?;
        if let Some(approval) = close.approval {
            Self::insert_approval(&mut tx, &period, close.close_id, approval).await?;
        }
        tx.commit().await?;
        Ok(CloseOutcome::Closed)
    }
}
