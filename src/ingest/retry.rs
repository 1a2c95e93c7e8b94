//! Retries of kept rejections (SPEC §2, §7.16): rows rejected as `UNKNOWN_PARTNER` or
//! `FX_RATE_MISSING` are checked again, before any new file, through the same checks and
//! segments as a file's rows. It never reads a file: the rows come from the store.

use polars::prelude::*;

use super::read::{CheckedPart, decide};
use super::rows::Rows;
use super::segment::{SEGMENT_ROWS, Segment};
use super::validate::{RowChecker, RowVerdict};
pub use crate::domain::revenue::{PendingRow, RetryResolution};

/// Segments of the rows ingested now, and what became of each retried rejection (by id).
pub type RetryOutcome = (Vec<Segment>, Vec<(i64, RetryResolution)>);

/// Checks retried rows again, before any new file (SPEC §7.16), in their order, through the
/// same checks and segments as a file's rows: one part per run of rows from the same file.
pub fn retry_rows(rows: &[PendingRow], checker: &mut RowChecker) -> PolarsResult<RetryOutcome> {
    let mut segments = Vec::new();
    let mut resolutions = Vec::with_capacity(rows.len());
    for same_file in rows.chunk_by(|a, b| a.source_file == b.source_file) {
        for batch in same_file.chunks(SEGMENT_ROWS) {
            let mut owned = Rows::default();
            for row in batch {
                let fields: [&str; 7] = std::array::from_fn(|i| row.fields[i].as_str());
                owned
                    .push_owned(fields, None, row.line, None)
                    .map_err(|e| PolarsError::ComputeError(e.to_string().into()))?;
            }
            let part = CheckedPart::new(checker, owned, &batch[0].source_file)?;
            let mut pending = batch.iter();
            let accepted = decide(checker, vec![part], |_, _, verdict| {
                let resolution = match verdict {
                    RowVerdict::Accepted { .. } | RowVerdict::Duplicate => {
                        RetryResolution::Resolved
                    }
                    RowVerdict::Rejected(reason, detail) => {
                        RetryResolution::StillRejected(reason, detail)
                    }
                };
                if let Some(row) = pending.next() {
                    resolutions.push((row.rejection_id, resolution));
                }
            })?;
            if let Some(accepted) = accepted {
                segments.push(accepted.encode()?);
            }
        }
    }
    Ok((segments, resolutions))
}
