//! The review pack of a report folder (issue 15): `changes.csv` against the previous published
//! draft of the period, the workbook (`payouts.xlsx`), `manifest.json`, and the record that lets the next draft compare with
//! this one. Orchestration only: the comparison is `reports::changes`, the data the store's.

use anyhow::Context;

use super::guard::Fingerprint;
use crate::domain::master::InputFile;
use crate::domain::review::CloseApproval;
use crate::earnings::PeriodComputation;
use crate::ingest::MasterData;
use crate::reports::changes::{self, InputChanges};
use crate::reports::manifest::{self, ApprovalManifest, ChangesSummary, Manifest};
use crate::store::{ReportKind, ReportSnapshot, Store};

/// What a report folder is, for its manifest and record.
pub(super) struct Folder<'a> {
    pub kind: ReportKind,
    pub run_id: &'a str,
    pub close_id: Option<&'a str>,
    pub fingerprint: &'a Fingerprint,
    /// The revenue files in `revenue/` as this run read them.
    pub revenue: &'a [InputFile],
    pub approval: Option<&'a CloseApproval>,
    /// Start every CSV file with a UTF-8 byte-order mark (`--csv-bom`).
    pub csv_bom: bool,
}

/// Writes `changes.csv` and `manifest.json` into `staged` and records the comparison (and, for
/// a draft, its partners). Returns the number of partners that changed.
pub(super) async fn write_review_pack(
    store: &Store,
    master: &MasterData,
    computation: &PeriodComputation,
    folder: &Folder<'_>,
    staged: &std::path::Path,
) -> anyhow::Result<u64> {
    let started = std::time::Instant::now();
    let period = computation.period.to_string();
    let previous = store.published_draft(&period).await?;
    let after = changes::snapshots(computation, master);
    let rows = match &previous {
        Some(previous) => {
            let inputs = input_changes(store, previous, folder).await?;
            changes::changes(Some(&previous.partners), &after, &inputs)
        }
        None => Vec::new(),
    };
    let mut changed: Vec<&str> = rows.iter().map(|r| r.partner_id.as_str()).collect();
    changed.dedup();
    let changed_partners = changed.len() as u64;
    crate::reports::write_changes(staged, &rows)
        .with_context(|| format!("writing changes.csv to {}", staged.display()))?;
    tracing::debug!(elapsed = ?started.elapsed(), "review pack: changes.csv written");
    crate::reports::xlsx::write_workbook(staged)?;
    tracing::debug!(elapsed = ?started.elapsed(), "review pack: payouts.xlsx written");
    if folder.csv_bom {
        crate::reports::add_csv_bom(staged)
            .with_context(|| format!("adding byte-order marks in {}", staged.display()))?;
    }
    let (code_version, git_commit) = manifest::code_version();
    let compared_with = previous.as_ref().map(|p| p.run_id.clone());
    let document = Manifest {
        kind: folder.kind.as_str(),
        period: period.clone(),
        run_id: folder.run_id.to_owned(),
        close_id: folder.close_id.map(str::to_owned),
        created_at: rfc3339(store.now_ms()),
        code_version,
        git_commit,
        fingerprint: folder.fingerprint.text(),
        master_data_sha256: manifest::master_data_sha256(&master.files),
        master_data: manifest::inputs(&master.files),
        revenue_files: manifest::inputs(folder.revenue),
        totals: manifest::totals(computation)?,
        changes: ChangesSummary {
            compared_with: compared_with.clone(),
            changed_partners,
            rows: rows.len() as u64,
        },
        approval: folder.approval.map(|a| ApprovalManifest {
            approved_by: a.approved_by.clone(),
            approved_at: rfc3339(a.approved_at_ms),
            draft_run_id: a.draft_run_id.clone(),
            draft_fingerprint: a.draft_fingerprint.clone(),
        }),
    };
    manifest::write(staged, &document)
        .with_context(|| format!("writing manifest.json to {}", staged.display()))?;
    let kept = match folder.kind {
        ReportKind::Draft => after.as_slice(),
        // No later draft compares with a final: its partners are the statements.
        ReportKind::Final => &[],
    };
    store
        .record_report_snapshot(
            &ReportSnapshot {
                run_id: folder.run_id,
                period: &period,
                kind: folder.kind,
                compared_with: compared_with.as_deref(),
                changed_partners,
                changed_values: rows.len() as u64,
            },
            kept,
        )
        .await
        .context("recording the review pack")?;
    tracing::debug!(elapsed = ?started.elapsed(), partners = after.len(), "review pack written");
    Ok(changed_partners)
}

/// What changed since `previous` was drafted: revenue files it did not read, retried rows
/// resolved since, master-data files whose content changed, and closes since.
async fn input_changes(
    store: &Store,
    previous: &crate::store::PublishedDraft,
    folder: &Folder<'_>,
) -> anyhow::Result<InputChanges> {
    let previous_inputs = store.run_inputs(&previous.run_id).await?;
    let new_revenue_files = folder
        .revenue
        .iter()
        .filter(|file| !previous_inputs.iter().any(|p| p.sha256 == file.sha256))
        .map(|file| file.name.clone())
        .collect();
    let retried_rows = store
        .retried_partners_since(&previous.run_id, previous.started_at_ms)
        .await?;
    let previous_fingerprint = previous.fingerprint.as_deref().and_then(Fingerprint::parse);
    let (changed_master_files, period_closed) = match &previous_fingerprint {
        Some(before) => (
            before.changed_master_files(folder.fingerprint),
            before.closes_differ(folder.fingerprint),
        ),
        None => (Vec::new(), false),
    };
    Ok(InputChanges {
        new_revenue_files,
        retried_rows,
        changed_master_files,
        period_closed,
    })
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
