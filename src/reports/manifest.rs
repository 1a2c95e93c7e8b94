//! `manifest.json` (issue 15; SPEC §4, reproducibility): what a report folder is (draft or
//! final), which run or close made it and when, the code version, every input file with its
//! SHA-256, the master-data snapshot's hash, the totals per currency, what the folder was
//! compared with (`changes.csv`) and, for a final, who approved the close. Written into the
//! staging folder with the other reports, so it is published by the same rename.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::master::InputFile;
use crate::domain::money::{Currency, format_minor};
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

/// `payouts.csv`'s money columns summed per payout currency, with its minor units.
pub fn totals(computation: &PeriodComputation) -> io::Result<Vec<CurrencyTotal>> {
    let mut sums: BTreeMap<Currency, (u64, [Decimal; 7])> = BTreeMap::new();
    for row in &computation.payouts {
        let s = &row.settlement;
        let entry = sums.entry(row.currency).or_default();
        entry.0 += 1;
        let figures = [
            s.earned,
            s.adjustments,
            s.released,
            s.carried_in,
            s.payable,
            s.after.carried,
            s.after.held,
        ];
        for (sum, figure) in entry.1.iter_mut().zip(figures) {
            *sum += figure;
        }
    }
    sums.into_iter()
        .map(|(currency, (partners, figures))| {
            let minor = currency.minor_units().map_err(io::Error::other)?;
            let money = |d: Decimal| format_minor(d, minor);
            Ok(CurrencyTotal {
                currency: currency.code().to_owned(),
                partners,
                earned: money(figures[0]),
                adjustments: money(figures[1]),
                released: money(figures[2]),
                carried_in: money(figures[3]),
                payable: money(figures[4]),
                carried: money(figures[5]),
                held: money(figures[6]),
            })
        })
        .collect()
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
