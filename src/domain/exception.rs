//! An exception as `exceptions.csv` lists it (SPEC §5, §7.1-§7.3): a rejected row or file, a
//! partner missing with a balance. Data, shared by the store that keeps them and the reports
//! that write them.

/// One open exception, as `exceptions.csv` lists it (SPEC §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionRow {
    pub source_file: String,
    pub line: Option<u64>,
    pub record_id: String,
    pub reason: String,
    pub detail: String,
    pub raw: String,
}
