//! Reading the input directory (SPEC §2): the master-data snapshot, which fails the run on any
//! bad row, and incremental revenue, where each bad row is rejected alone.
//!
//! Revenue flows `files` (which files, their hashes) → `read` (a file a block at a time:
//! `plain`, `quoted` or `parquet` into `rows`) → `validate` (row checks) → `record_index`
//! (duplicates, in row order) → batches laid out as `segment`s; `retry` sends kept rejections
//! through the same checks. Nothing here writes to the store or the reports.

pub mod file_rejection;
pub mod files;
pub mod lines;
pub mod master;
pub mod programs;
pub mod read;
pub mod record_index;
pub mod record_key;
pub mod retry;
pub mod rows;
pub mod segment;
pub mod validate;

/// Moved to `domain` (shared with the pure rules and the store); kept here under their old paths.
pub use crate::domain::{lookup, warning};

pub use file_rejection::FileRejection;
pub use files::{RevenueFile, list_revenue_files, list_revenue_files_unhashed};
pub use master::{MasterData, MasterDataError};
pub use programs::{Program, Programs};
pub use read::{Batch, FileReader};
pub use record_index::{IdFilter, RecordIndex};
pub use record_key::RecordHasher;
pub use retry::{RetryResolution, retry_rows};
pub use validate::RowChecker;
