//! `manifest.json` (issue 15; SPEC §4, reproducibility): what a report folder is (draft or
//! final), which run or close made it and when, the code version, every input file with its
//! SHA-256, the master-data snapshot's hash, the totals per currency, what the folder was
//! compared with (`changes.csv`) and, for a final, who approved the close. Written into the
//! staging folder with the other reports, so it is published by the same rename.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::master::InputFile;
use crate::domain::money::{Currency, MoneyError, Payable};
use crate::earnings::PeriodComputation;

/// The file name, in every report folder.
pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ManifestInput {
    pub file: String,
    pub sha256: String,
}

/// The sums of `payouts.csv`'s money columns for one payout currency.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CurrencyTotal {
    pub currency: String,
    pub partners: u64,
    pub earned: String,
    pub adjustments: String,
    pub released: String,
    pub carried_in: String,
    pub payable: String,
    pub carried: String,
    pub held: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChangesSummary {
    /// The run id of the draft `changes.csv` compares with; null for a period's first draft.
    pub compared_with: Option<String>,
    pub changed_partners: u64,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApprovalManifest {
    pub approved_by: String,
    /// RFC 3339.
    pub approved_at: String,
    pub draft_run_id: String,
    pub draft_fingerprint: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Manifest {
    /// `draft` or `final`.
    pub kind: &'static str,
    pub period: String,
    pub run_id: String,
    /// The close's id, for a final.
    pub close_id: Option<String>,
    /// RFC 3339, when the reports were computed.
    pub created_at: String,
    pub code_version: &'static str,
    /// The git commit the binary was built from, when the build said (`PAYOUT_GIT_COMMIT`).
    pub git_commit: Option<&'static str>,
    /// What the figures were computed from (engine, period, store state, master data).
    pub fingerprint: String,
    /// SHA-256 of the master-data files' names and hashes (`name=sha256\n`, in read order).
    pub master_data_sha256: String,
    pub master_data: Vec<ManifestInput>,
    pub revenue_files: Vec<ManifestInput>,
    pub totals: Vec<CurrencyTotal>,
    pub changes: ChangesSummary,
    pub approval: Option<ApprovalManifest>,
}

/// The code version: the crate's, and the commit when the build passed `PAYOUT_GIT_COMMIT`.
pub fn code_version() -> (&'static str, Option<&'static str>) {
    (
        env!("CARGO_PKG_VERSION"),
        option_env!("PAYOUT_GIT_COMMIT").filter(|c| !c.is_empty()),
    )
}

/// SHA-256 over the master-data files' names and hashes, one `name=sha256` line each.
pub fn master_data_sha256(files: &[InputFile]) -> String {
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(file.name.as_bytes());
        hasher.update(b"=");
        hasher.update(file.sha256.as_bytes());
        hasher.update(b"\n");
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn inputs(files: &[InputFile]) -> Vec<ManifestInput> {
    files
        .iter()
        .map(|f| ManifestInput {
            file: f.name.clone(),
            sha256: f.sha256.clone(),
        })
        .collect()
}

/// `payouts.csv`'s money columns summed per payout currency (exact sums of rounded amounts).
pub fn totals(computation: &PeriodComputation) -> io::Result<Vec<CurrencyTotal>> {
    let money_error = |e: MoneyError| io::Error::other(format!("manifest.json totals: {e}"));
    let mut sums: BTreeMap<Currency, (u64, [Payable; 7])> = BTreeMap::new();
    for row in &computation.payouts {
        let s = &row.settlement;
        let entry = match sums.get_mut(&row.currency) {
            Some(entry) => entry,
            None => {
                let zero = Payable::zero(row.currency).map_err(|e| money_error(e.into()))?;
                sums.entry(row.currency).or_insert((0, [zero; 7]))
            }
        };
        entry.0 += 1;
        let figures = [
            s.earned,
            s.adjustments,
            s.released,
            s.carried_in,
            s.payable,
            s.after.carried(),
            s.after.held(),
        ];
        for (sum, figure) in entry.1.iter_mut().zip(figures) {
            *sum = sum.checked_add(figure).map_err(money_error)?;
        }
    }
    Ok(sums
        .into_iter()
        .map(|(currency, (partners, figures))| CurrencyTotal {
            currency: currency.code().to_owned(),
            partners,
            earned: figures[0].to_string(),
            adjustments: figures[1].to_string(),
            released: figures[2].to_string(),
            carried_in: figures[3].to_string(),
            payable: figures[4].to_string(),
            carried: figures[5].to_string(),
            held: figures[6].to_string(),
        })
        .collect())
}

/// Writes `manifest.json` into `dir` and syncs it.
pub fn write(dir: &Path, manifest: &Manifest) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(manifest).map_err(io::Error::other)?;
    text.push('\n');
    let mut file = std::fs::File::create(dir.join(MANIFEST))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_master_data_hash_covers_names_and_contents() {
        let file = |name: &str, sha: &str| InputFile {
            name: name.into(),
            sha256: sha.into(),
        };
        let a = master_data_sha256(&[file("partners.csv", "aa"), file("profiles.csv", "bb")]);
        let b = master_data_sha256(&[file("partners.csv", "aa"), file("profiles.csv", "bc")]);
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(
            a,
            master_data_sha256(&[file("partners.csv", "aa"), file("profiles.csv", "bb")])
        );
    }
}
