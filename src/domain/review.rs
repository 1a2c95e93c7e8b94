//! What a published report folder is reviewed against (issue 15): each partner's
//! `payouts.csv` cells, line counts and master data as one draft saw them, kept in the store so
//! that the next draft of the period (or its close) can say what changed and why, even when the
//! earlier report folder is gone. Plain data: the store keeps it, `reports::changes` compares it.

use std::collections::BTreeMap;

/// One partner as a published draft saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerSnapshot {
    pub partner_id: String,
    pub partner_name: String,
    /// The partner's `payouts.csv` cells after `partner_id`, as written (in column order);
    /// `None` when the partner had no `payouts.csv` row.
    pub payout_cells: Option<Vec<String>>,
    /// Ingested lines of the period's own month (`revenue_lines` of `eligibility.csv`).
    pub own_lines: u64,
    /// The partner's master data, field by field (`profile tax_profile` → `complete`).
    pub master_facts: BTreeMap<String, String>,
}

/// Who approved a close, when, and which draft (by its fingerprint) they approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseApproval {
    pub approved_by: String,
    pub approved_at_ms: i64,
    pub draft_run_id: String,
    pub draft_fingerprint: String,
}
