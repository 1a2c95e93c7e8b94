//! `run` (SPEC §4): the draft reports of a period, published whole, with the fingerprint of
//! what they were computed from, so that `close` can refuse figures nobody reviewed. Changes
//! no balance and sends nothing. Each draft folder has its review pack (`review`): the
//! changes since the previous draft and a manifest.

use anyhow::Context;

use super::compute::{compute, record_missing_partners};
use super::guard::Fingerprint;
use super::ingest::{IngestSummary, ingest};
use super::review::{Folder, write_review_pack};
use super::{
    LEDGER_LEASE, LEDGER_LEASE_WAIT, LINE_REPORT, Paths, failed_before_start, failpoint,
    load_master, with_run,
};
use crate::domain::period::Period;
use crate::earnings::Detail;
use crate::ingest::MasterData;
use crate::reports;
use crate::store::{ReportKind, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Draft {
        partners: usize,
        exceptions: usize,
        /// Partners whose `payouts.csv` row differs from the previous draft (`changes.csv`).
        changed_partners: u64,
    },
    /// The period is closed: its final reports stand, only new revenue was ingested.
    AlreadyClosed,
    /// Nothing the draft depends on changed since the last draft: its reports stand.
    Unchanged,
}

/// What a draft of `period` is computed from, now (see `guard::Fingerprint`).
pub(super) async fn draft_fingerprint(
    store: &Store,
    master: &MasterData,
    period: Period,
) -> anyhow::Result<Fingerprint> {
    Ok(Fingerprint::new(
        period,
        store.ledger_version().await?,
        &master.files,
    ))
}

/// `payout run --period P`: ingest, compute and write the draft reports. Changes no balance
/// and sends nothing (SPEC §4).
pub async fn run(
    store: &Store,
    paths: &Paths,
    period: Period,
) -> anyhow::Result<(RunOutcome, IngestSummary)> {
    let master = match load_master(&paths.data_dir) {
        Ok(master) => master,
        Err(e) => return Err(failed_before_start(store, "run", period, e).await),
    };
    let lease = store.acquire_lease(LEDGER_LEASE, LEDGER_LEASE_WAIT).await?;
    let result = with_run(store, "run", period, &master.files, async |run_id| {
        let (summary, inputs) = ingest(store, &master, &paths.data_dir, run_id).await?;
        let last_closed = store.last_closed().await?;
        if last_closed.is_some_and(|closed| period <= closed) {
            return Ok(((RunOutcome::AlreadyClosed, summary), inputs));
        }
        let period_text = period.to_string();
        // Nothing the draft depends on changed since the last one: its reports stand as they are.
        let fingerprint = draft_fingerprint(store, &master, period).await?;
        let published = paths
            .reports_dir
            .join(&period_text)
            .join("payouts.csv")
            .exists();
        if published
            && store.last_draft_fingerprint(&period_text).await?.as_deref()
                == Some(fingerprint.text().as_str())
        {
            store.set_fingerprint(run_id, &fingerprint.text()).await?;
            return Ok(((RunOutcome::Unchanged, summary), inputs));
        }
        reports::remove_stale_staging(&paths.reports_dir, &period_text)?;
        let staged =
            reports::staging_dir(&paths.reports_dir, &period_text, &format!("draft-{run_id}"));
        let (computation, _) = compute(
            store,
            &master,
            period,
            Detail::Payouts,
            &staged.join(LINE_REPORT),
        )
        .await?;
        record_missing_partners(store, &master, run_id, &computation).await?;
        let exceptions = store.open_exceptions().await?;
        reports::write_period_reports(&staged, &computation, &exceptions)
            .with_context(|| format!("writing reports to {}", staged.display()))?;
        let folder = Folder {
            kind: ReportKind::Draft,
            run_id,
            close_id: None,
            fingerprint: &fingerprint,
            revenue: &inputs,
            approval: None,
            csv_bom: paths.csv_bom,
        };
        let changed_partners =
            write_review_pack(store, &master, &computation, &folder, &staged).await?;
        failpoint("run-before-publish");
        reports::publish(&paths.reports_dir, &period_text, &staged)
            .context("publishing reports")?;
        store.set_fingerprint(run_id, &fingerprint.text()).await?;
        let outcome = RunOutcome::Draft {
            partners: computation.payouts.len(),
            exceptions: exceptions.len() + computation.fx_gaps.len(),
            changed_partners,
        };
        Ok(((outcome, summary), inputs))
    })
    .await;
    lease.release().await?;
    result
}
