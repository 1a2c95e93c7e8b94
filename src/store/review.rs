//! The review pack in the store (issue 15): per published report folder, what it was compared
//! with and how many partners changed (`report_snapshots`); per draft, its partners as the
//! folder showed them (`draft_partners`), for the next draft's `changes.csv`; per close, who
//! approved it (`close_approvals`, written in the close's transaction). Keeps and returns data;
//! the comparison itself is `reports::changes`. Partner rows are kept for the draft a folder
//! compared with and the folder's own draft only, so they stay bounded by two drafts a period.

use std::collections::BTreeMap;

use sqlx::Row;

use super::insert::InsertInto;
use super::{Store, StoreError, StoreResult, retried_reasons_sql};
use crate::domain::review::{CloseApproval, PartnerSnapshot};

const DRAFT_PARTNERS: InsertInto = InsertInto {
    table: "draft_partners",
    columns: &[
        "run_id",
        "partner_id",
        "partner_name",
        "payout_cells",
        "own_lines",
        "master_facts",
    ],
    suffix: "",
};

/// The position of `partner_id` among a retried row's seven stored fields (`REVENUE_COLUMNS`).
const PARTNER_FIELD: usize = 1;

/// Draft or final report folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Draft,
    Final,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Draft => "draft",
            ReportKind::Final => "final",
        }
    }
}

/// A report folder's comparison, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSnapshot<'a> {
    pub run_id: &'a str,
    pub period: &'a str,
    pub kind: ReportKind,
    pub compared_with: Option<&'a str>,
    pub changed_partners: u64,
    pub changed_values: u64,
}

/// The latest published draft of a period: its run, start, fingerprint and partners.
#[derive(Debug, Clone)]
pub struct PublishedDraft {
    pub run_id: String,
    pub started_at_ms: i64,
    pub fingerprint: Option<String>,
    pub partners: Vec<PartnerSnapshot>,
}

/// The latest draft of a period (`$1`) whose report folder was published.
const LATEST_PUBLISHED_DRAFT: &str = "FROM report_snapshots s JOIN runs r ON r.id = s.run_id \
     WHERE s.period = $1 AND s.kind = 'draft' AND r.outcome = 'succeeded' \
     ORDER BY r.started_at_ms DESC, r.id DESC LIMIT 1";

impl Store {
    /// Records a report folder's comparison and, for a draft, its partners (one transaction;
    /// recording the same run again replaces what it recorded).
    pub async fn record_report_snapshot(
        &self,
        snapshot: &ReportSnapshot<'_>,
        partners: &[PartnerSnapshot],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM draft_partners WHERE run_id = $1")
            .bind(snapshot.run_id.to_owned())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM report_snapshots WHERE run_id = $1")
            .bind(snapshot.run_id.to_owned())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO report_snapshots (run_id, period, kind, created_at_ms, compared_with, changed_partners, changed_values) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(snapshot.run_id.to_owned())
        .bind(snapshot.period.to_owned())
        .bind(snapshot.kind.as_str().to_owned())
        .bind(self.now_ms())
        .bind(snapshot.compared_with.map(str::to_owned))
        .bind(snapshot.changed_partners as i64)
        .bind(snapshot.changed_values as i64)
        .execute(&mut *tx)
        .await?;
        let mut rows = Vec::with_capacity(partners.len());
        for partner in partners {
            let cells = partner
                .payout_cells
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("payout cells: {e}")))?;
            let facts = serde_json::to_string(&partner.master_facts)
                .map_err(|e| StoreError::Corrupt(format!("master facts: {e}")))?;
            rows.push((partner, cells, facts));
        }
        DRAFT_PARTNERS
            .execute(&mut tx, rows, |mut row, (partner, cells, facts)| {
                row.push_bind(snapshot.run_id.to_owned())
                    .push_bind(partner.partner_id.clone())
                    .push_bind(partner.partner_name.clone())
                    .push_bind(cells)
                    .push_bind(partner.own_lines as i64)
                    .push_bind(facts);
            })
            .await?;
        // Only the draft compared with (should this run fail, the next compares with it again)
        // and this run's partners are ever read: older drafts' rows go.
        sqlx::query(
            "DELETE FROM draft_partners WHERE run_id IN (SELECT run_id FROM report_snapshots \
             WHERE period = $1 AND run_id <> $2 AND run_id <> $3)",
        )
        .bind(snapshot.period.to_owned())
        .bind(snapshot.run_id.to_owned())
        .bind(snapshot.compared_with.unwrap_or("").to_owned())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The run id of the latest draft of `period` whose report folder was published, without
    /// its partners (what a close's approval names); `None` before the first.
    pub async fn published_draft_run_id(&self, period: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query(&format!("SELECT r.id {LATEST_PUBLISHED_DRAFT}"))
            .bind(period.to_owned())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// The latest draft of `period` whose report folder was published (its run succeeded),
    /// with its partners; `None` before the first.
    pub async fn published_draft(&self, period: &str) -> StoreResult<Option<PublishedDraft>> {
        let row = sqlx::query(&format!(
            "SELECT r.id, r.started_at_ms, r.fingerprint {LATEST_PUBLISHED_DRAFT}"
        ))
        .bind(period.to_owned())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let run_id: String = row.try_get(0)?;
        let partners = sqlx::query(
            "SELECT partner_id, partner_name, payout_cells, own_lines, master_facts FROM draft_partners \
             WHERE run_id = $1 ORDER BY partner_id",
        )
        .bind(run_id.clone())
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            let cells: Option<String> = r.try_get(2)?;
            let facts: String = r.try_get(4)?;
            Ok(PartnerSnapshot {
                partner_id: r.try_get(0)?,
                partner_name: r.try_get(1)?,
                payout_cells: cells
                    .map(|c| serde_json::from_str(&c))
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("draft payout cells: {e}")))?,
                own_lines: r.try_get::<i64, _>(3)? as u64,
                master_facts: serde_json::from_str(&facts)
                    .map_err(|e| StoreError::Corrupt(format!("draft master facts: {e}")))?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some(PublishedDraft {
            run_id,
            started_at_ms: row.try_get(1)?,
            fingerprint: row.try_get(2)?,
            partners,
        }))
    }

    /// Retried rows resolved by runs after the draft `run_id` (started at `started_at_ms`),
    /// counted per partner.
    pub async fn retried_partners_since(
        &self,
        run_id: &str,
        started_at_ms: i64,
    ) -> StoreResult<BTreeMap<String, u64>> {
        let sql = format!(
            "SELECT fields FROM rejections WHERE status = 'resolved' AND reason IN ({}) \
             AND resolved_run_id IN (SELECT id FROM runs WHERE started_at_ms >= $1 AND id <> $2)",
            retried_reasons_sql()
        );
        let mut counts = BTreeMap::new();
        for row in sqlx::query(&sql)
            .bind(started_at_ms)
            .bind(run_id.to_owned())
            .fetch_all(self.pool())
            .await?
        {
            let fields: Option<String> = row.try_get(0)?;
            let fields: Vec<String> = serde_json::from_str(fields.as_deref().unwrap_or("[]"))
                .map_err(|e| StoreError::Corrupt(format!("rejection fields: {e}")))?;
            let partner_id = fields
                .into_iter()
                .nth(PARTNER_FIELD)
                .ok_or_else(|| StoreError::Corrupt("retried row without its partner".into()))?;
            *counts.entry(partner_id).or_insert(0) += 1;
        }
        Ok(counts)
    }

    /// The changed partners of each period's latest published report folder (draft or final).
    pub async fn changed_partners_by_period(&self) -> StoreResult<BTreeMap<String, u64>> {
        let mut changed = BTreeMap::new();
        for row in sqlx::query(
            "SELECT s.period, s.changed_partners FROM report_snapshots s JOIN runs r ON r.id = s.run_id \
             WHERE r.outcome = 'succeeded' OR s.run_id IN (SELECT run_id FROM period_closes) \
             ORDER BY s.created_at_ms, s.run_id",
        )
        .fetch_all(self.pool())
        .await?
        {
            changed.insert(row.try_get(0)?, row.try_get::<i64, _>(1)? as u64);
        }
        Ok(changed)
    }

    /// Who approved the close of `period`, if anyone.
    pub async fn close_approval(&self, period: &str) -> StoreResult<Option<CloseApproval>> {
        Ok(self.close_approvals().await?.remove(period))
    }

    /// Every recorded close approval, by period.
    pub async fn close_approvals(&self) -> StoreResult<BTreeMap<String, CloseApproval>> {
        let mut approvals = BTreeMap::new();
        for row in sqlx::query(
            "SELECT period, approved_by, approved_at_ms, draft_run_id, draft_fingerprint FROM close_approvals",
        )
        .fetch_all(self.pool())
        .await?
        {
            approvals.insert(
                row.try_get(0)?,
                CloseApproval {
                    approved_by: row.try_get(1)?,
                    approved_at_ms: row.try_get(2)?,
                    draft_run_id: row.try_get(3)?,
                    draft_fingerprint: row.try_get(4)?,
                },
            );
        }
        Ok(approvals)
    }

    /// Records the approval of a close, inside the close's transaction.
    pub(super) async fn insert_approval(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        period: &str,
        close_id: &str,
        approval: &CloseApproval,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO close_approvals (period, close_id, approved_by, approved_at_ms, draft_run_id, draft_fingerprint) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(period.to_owned())
        .bind(close_id.to_owned())
        .bind(approval.approved_by.clone())
        .bind(approval.approved_at_ms)
        .bind(approval.draft_run_id.clone())
        .bind(approval.draft_fingerprint.clone())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}
