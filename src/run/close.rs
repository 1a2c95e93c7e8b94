//! `close` (SPEC §4): a period finalised in one transaction (statements, balances, booking of
//! late lines and the statement emails in the outbox), its final reports published by one
//! rename, with its review pack (`review`: changes against the last draft, the manifest and
//! who approved it). Refused, with nothing changed, by the guards in `guard`.

use anyhow::{Context, bail};

use super::compute::{compute, record_missing_partners};
use super::draft::draft_fingerprint;
use super::guard::{self, Fingerprint, SignOff, Today};
use super::ingest::ingest;
use super::review::{Folder, write_review_pack};
use super::{
    LEDGER_LEASE, LEDGER_LEASE_WAIT, LINE_REPORT, Paths, failed_before_start, failpoint,
    load_master, with_run,
};
use crate::domain::partner::UserRole;
use crate::domain::period::Period;
use crate::domain::reasons::join_codes;
use crate::domain::review::CloseApproval;
use crate::domain::status::OutboxKind;
use crate::earnings::Detail;
use crate::ingest::MasterData;
use crate::ingest::master::InputFile;
use crate::notify::Renderer;
use crate::notify::statement::StatementRecord;
use crate::notify::templates::Language;
use crate::reports;
use crate::store::{CloseOutcome, ClosePlan, OutboxMessage, ReportKind, Store};

/// A close recomputes at most this many times when other closes keep moving its basis.
const MAX_CLOSE_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseResult {
    Closed { statements: usize, emails: usize },
    AlreadyClosed,
}

/// Refuses a close whose figures would differ from the latest draft of the period; a period
/// never drafted closes as it is (SPEC §6 allows `close` without a `run`).
async fn ensure_matches_draft(
    store: &Store,
    master: &MasterData,
    period: Period,
    revenue: &[InputFile],
) -> anyhow::Result<()> {
    let Some(draft) = store.last_draft(&period.to_string()).await? else {
        return Ok(());
    };
    let reviewed = Fingerprint::parse(&draft.fingerprint).with_context(|| {
        format!(
            "the fingerprint of draft run {} cannot be read",
            draft.run_id
        )
    })?;
    let current = draft_fingerprint(store, master, period).await?;
    if reviewed == current {
        return Ok(());
    }
    let comparison = guard::DraftComparison {
        draft: &reviewed,
        current: &current,
        draft_inputs: &store.run_inputs(&draft.run_id).await?,
        current_revenue: revenue,
        retried_rows: store.retried_rows_since(&draft).await?,
    };
    Ok(guard::ensure_matches_draft(period, &comparison)?)
}

/// The approval a close records: who signed off (`--approved-by`) and the latest draft, which
/// `ensure_matches_draft` has just found equal to what the close computes. Approving needs a
/// draft: without one nobody reviewed anything.
async fn approval(
    store: &Store,
    period: Period,
    sign_off: &SignOff,
) -> anyhow::Result<Option<CloseApproval>> {
    let Some(approved_by) = &sign_off.approved_by else {
        return Ok(None);
    };
    let Some(draft) = store.last_draft(&period.to_string()).await? else {
        bail!(
            "cannot close {period} with an approval: it has no draft to approve; run the draft (`payout run --period {period}`), review it, then close"
        );
    };
    // The draft finance reviewed is the last one that published a folder: an unchanged re-run
    // publishes nothing (and has the same fingerprint), so its run id names no report.
    let reviewed = store.published_draft_run_id(&period.to_string()).await?;
    Ok(Some(CloseApproval {
        approved_by: approved_by.clone(),
        approved_at_ms: store.now_ms(),
        draft_run_id: reviewed.unwrap_or(draft.run_id),
        draft_fingerprint: draft.fingerprint,
    }))
}

/// Who receives a partner's statement: its active incentive admins and users, or
/// `admin_email` when it has none (SPEC §3).
pub fn statement_recipients(master: &MasterData, partner_id: &str) -> Vec<(String, String)> {
    let mut recipients: Vec<(String, String)> = master
        .users
        .get(partner_id)
        .into_iter()
        .flatten()
        .filter(|u| {
            u.active && matches!(u.role, UserRole::IncentiveAdmin | UserRole::IncentiveUser)
        })
        .map(|u| (u.email.clone(), u.name.clone()))
        .collect();
    // One message per address, however it is capitalised.
    recipients.sort_by_key(|(email, name)| (email.to_ascii_lowercase(), name.clone()));
    recipients.dedup_by(|a, b| a.0.eq_ignore_ascii_case(&b.0));
    if recipients.is_empty()
        && let Some(partner) = master.partners.get(partner_id)
    {
        recipients.push((partner.admin_email.clone(), partner.name.clone()));
    }
    recipients
}

/// `payout close --period P`: finalise P in one transaction and queue its statements (SPEC §4).
/// Refused, with nothing changed, while P has not ended on `today` (a closed period stays a
/// no-op, SPEC §7.14).
pub async fn close(
    store: &Store,
    paths: &Paths,
    period: Period,
    today: Today,
    sign_off: &SignOff,
) -> anyhow::Result<CloseResult> {
    if store.close_id(period).await?.is_none() {
        guard::ensure_ended(period, &today)?;
        guard::ensure_sign_off(period, sign_off)?;
    }
    let master = match load_master(&paths.data_dir) {
        Ok(master) => master,
        Err(e) => return Err(failed_before_start(store, "close", period, e).await),
    };
    let lease = store.acquire_lease(LEDGER_LEASE, LEDGER_LEASE_WAIT).await?;
    let result = close_locked(store, paths, &master, period, today.date, sign_off).await;
    lease.release().await?;
    result
}

async fn close_locked(
    store: &Store,
    paths: &Paths,
    master: &MasterData,
    period: Period,
    issued_on: chrono::NaiveDate,
    sign_off: &SignOff,
) -> anyhow::Result<CloseResult> {
    let period_text = period.to_string();
    if let Some(close_id) = store.close_id(period).await? {
        // Closed already: finish publishing the final reports if a crash interrupted it.
        let staged = reports::staging_dir(
            &paths.reports_dir,
            &period_text,
            &format!("close-{close_id}"),
        );
        reports::publish(&paths.reports_dir, &period_text, &staged)?;
        return Ok(CloseResult::AlreadyClosed);
    }
    if let Some(closed) = store.last_closed().await?
        && period < closed
    {
        bail!(
            "period {period} is before the last closed period {closed}: it can no longer be closed; its late revenue is booked as adjustments"
        );
    }
    reports::remove_stale_staging(&paths.reports_dir, &period_text)?;
    with_run(store, "close", period, &master.files, async |run_id| {
        let (_, inputs) = ingest(store, master, &paths.data_dir, run_id).await?;
        for _ in 0..MAX_CLOSE_ATTEMPTS {
            let basis = store.last_closed().await?;
            if let Some(open) = store.earlier_open_revenue(basis, period).await? {
                bail!("cannot close {period}: the earlier period {open} has revenue and is still open; close it first");
            }
            ensure_matches_draft(store, master, period, &inputs).await?;
            let approval = approval(store, period, sign_off).await?;
            let close_id = uuid::Uuid::new_v4().to_string();
            let staged = reports::staging_dir(&paths.reports_dir, &period_text, &format!("close-{close_id}"));
            let (computation, late_segments) = compute(store, master, period, Detail::Statements, &staged.join(LINE_REPORT)).await?;
            record_missing_partners(store, master, run_id, &computation).await?;
            guard::ensure_no_missing_lines(period, &computation.missing_partners)?;
            if let Some(gap) = computation.fx_gaps.first() {
                bail!(
                    "cannot close {period}: {} ingested line(s) have no FX rate any more (first: {} line {}: {})",
                    computation.fx_gaps.len(),
                    gap.source_file,
                    gap.line,
                    gap.detail
                );
            }
            let eligibility: std::collections::HashMap<&str, &crate::earnings::EligibilityRow> =
                computation.eligibility.iter().map(|row| (row.partner_id.as_str(), row)).collect();
            let mut statements: Vec<StatementRecord> = computation
                .payouts
                .iter()
                .map(|figures| {
                    let partner = master.partners.get(&figures.partner_id);
                    let language = Language::for_country(partner.map_or("", |p| p.country.as_str()));
                    let program_name = partner
                        .and_then(|p| master.programs.for_type(p.partner_type))
                        .map_or("", |p| p.name.as_str());
                    let mut record = StatementRecord::from_figures(figures, period, program_name, language);
                    // What the statement explains beyond the figures (SPEC §3 eligibility, holds).
                    if let Some(row) = eligibility.get(figures.partner_id.as_str()) {
                        record.eligibility_reasons = join_codes(row.reasons.iter().map(|r| r.code()));
                    }
                    record.enrolled_on = partner.and_then(|p| p.enrolled_on).map(|d| d.to_string());
                    record.issued_on = Some(issued_on.to_string());
                    record.issuer = Some(paths.issuer.clone());
                    record
                })
                .collect();
            let messages: Vec<OutboxMessage> = computation
                .payouts
                .iter()
                .flat_map(|p| {
                    statement_recipients(master, &p.partner_id).into_iter().map(|(recipient, recipient_name)| OutboxMessage {
                        kind: OutboxKind::Statement,
                        partner_id: p.partner_id.clone(),
                        scope: period_text.clone(),
                        recipient,
                        recipient_name,
                        // The statement itself (language included) is read from the store at send.
                        context: serde_json::json!({}),
                    })
                })
                .collect();
            let exceptions = store.open_exceptions().await?;
            reports::write_period_reports(&staged, &computation, &exceptions)
                .with_context(|| format!("writing reports to {}", staged.display()))?;
            // Rendered once, here: the hashes go into the close, and `send` attaches these files.
            let rendering = std::time::Instant::now();
            Renderer::new()?.write_statements(&staged.join("statements"), &mut statements)?;
            tracing::debug!(statements = statements.len(), elapsed_ms = rendering.elapsed().as_millis() as u64, "statements rendered and written");
            let fingerprint = draft_fingerprint(store, master, period).await?;
            let folder = Folder {
                kind: ReportKind::Final,
                run_id,
                close_id: Some(&close_id),
                fingerprint: &fingerprint,
                revenue: &inputs,
                approval: approval.as_ref(),
                csv_bom: paths.csv_bom,
            };
            write_review_pack(store, master, &computation, &folder, &staged).await?;
            let plan = ClosePlan {
                period,
                close_id: &close_id,
                run_id,
                basis,
                statements: &statements,
                booked_segments: &late_segments,
                messages: &messages,
                approval: approval.as_ref(),
            };
            failpoint("close-before-commit");
            match store.close_period(plan).await.with_context(|| format!("closing {period}"))? {
                CloseOutcome::Closed => {
                    failpoint("close-after-commit");
                    reports::publish(&paths.reports_dir, &period_text, &staged).context("publishing reports")?;
                    let result = CloseResult::Closed { statements: computation.payouts.len(), emails: messages.len() };
                    return Ok((result, inputs));
                }
                CloseOutcome::AlreadyClosed => {
                    std::fs::remove_dir_all(&staged)?;
                    return Ok((CloseResult::AlreadyClosed, inputs));
                }
                CloseOutcome::BasisChanged => {
                    std::fs::remove_dir_all(&staged)?;
                    tracing::warn!(%period, "another close moved the basis; computing again");
                }
            }
        }
        bail!("cannot close {period}: other closes kept changing the balances ({MAX_CLOSE_ATTEMPTS} attempts)")
    })
    .await
}
