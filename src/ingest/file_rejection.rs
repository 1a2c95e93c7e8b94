//! Why a revenue file is rejected whole (SPEC §7.2): a header without a revenue column, bytes
//! that are not UTF-8 or not CSV, a Parquet file that cannot be read or has a column of a type
//! that cannot be read exactly, an I/O error. The text of each is the `detail` of the file's
//! `FILE_REJECTED` row in exceptions.csv, so every message here is output and must never
//! change by a byte. A bad row is never one of these: it is a `read::Rejection`, and the file
//! goes on.

use polars::prelude::{ArrowDataType, DataType, PolarsError};

#[derive(Debug, thiserror::Error)]
pub enum FileRejection {
    #[error("not a CSV or Parquet file (expected .csv or .parquet)")]
    UnknownExtension,
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("missing column `{column}`")]
    MissingColumn { column: &'static str },
    /// A CSV header names a column twice (empty names, left by trailing commas, excepted).
    #[error("column `{column}` appears more than once in the header")]
    HeaderColumnTwice { column: String },
    /// A Parquet schema has a revenue column twice.
    #[error("column `{column}` appears more than once")]
    SchemaColumnTwice { column: &'static str },
    /// Nothing but blank lines.
    #[error("not CSV: no header")]
    NoHeader,
    /// The `csv` crate cannot read the header.
    #[error("not CSV: {0}")]
    NotCsv(csv::Error),
    /// The `csv` crate cannot read a record; `line` is where it is.
    #[error("not CSV (line {line}): {source}")]
    NotCsvAt { line: u64, source: csv::Error },
    #[error("not UTF-8 (line {line})")]
    NotUtf8 { line: u64 },
    /// A block's text would pass 4 GiB: its rows' spans are 32-bit.
    #[error("line {line}: more than 4 GiB of text in one block")]
    BlockTooLarge { line: u64 },
    #[error("cannot encode segment: {0}")]
    Encode(PolarsError),
    #[error("not a readable Parquet file: {0}")]
    NotParquet(PolarsError),
    /// A panic inside polars, caught: no input may end the run.
    #[error("not a readable Parquet file: the reader failed: {cause}")]
    ParquetReaderFailed { cause: String },
    #[error(
        "column `{column}` is floating point ({dtype:?}): amounts and ids must be text, \
         integers or DECIMAL, since a float has already been rounded"
    )]
    FloatColumn {
        column: &'static str,
        dtype: ArrowDataType,
    },
    #[error("column `{column}` is {dtype:?}: DECIMAL is read up to {max_digits} digits")]
    DecimalTooWide {
        column: &'static str,
        dtype: ArrowDataType,
        max_digits: usize,
    },
    #[error(
        "column `{column}` is {dtype:?}: revenue columns must be text, integers or DECIMAL \
         (billing_month as text YYYY-MM)"
    )]
    UnreadableType {
        column: &'static str,
        dtype: ArrowDataType,
    },
    /// A slice decoded as another type than the schema said.
    #[error("column `{column}` was read as {dtype}, not text, integers or DECIMAL")]
    DecodedAs {
        column: &'static str,
        dtype: DataType,
    },
    #[error("column `{column}` cannot be read as text: {source}")]
    NotText {
        column: &'static str,
        source: PolarsError,
    },
    /// Polars failed on the columns of a decoded slice; its own words.
    #[error("{0}")]
    SliceColumns(PolarsError),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are the `detail` of `FILE_REJECTED` rows: pinned here, byte for byte.
    #[test]
    fn each_rejection_reads_as_the_exceptions_report_has_it() {
        let float = ArrowDataType::Float64;
        let wide = ArrowDataType::Decimal256(40, 2);
        let cases: [(FileRejection, String); 10] = [
            (
                FileRejection::UnknownExtension,
                "not a CSV or Parquet file (expected .csv or .parquet)".into(),
            ),
            (
                FileRejection::MissingColumn { column: "amount" },
                "missing column `amount`".into(),
            ),
            (
                FileRejection::HeaderColumnTwice {
                    column: "region".into(),
                },
                "column `region` appears more than once in the header".into(),
            ),
            (
                FileRejection::SchemaColumnTwice { column: "amount" },
                "column `amount` appears more than once".into(),
            ),
            (FileRejection::NoHeader, "not CSV: no header".into()),
            (
                FileRejection::NotUtf8 { line: 7 },
                "not UTF-8 (line 7)".into(),
            ),
            (
                FileRejection::BlockTooLarge { line: 9 },
                "line 9: more than 4 GiB of text in one block".into(),
            ),
            (
                FileRejection::FloatColumn {
                    column: "amount",
                    dtype: float.clone(),
                },
                format!(
                    "column `amount` is floating point ({float:?}): amounts and ids must be text, integers or DECIMAL, since a float has already been rounded"
                ),
            ),
            (
                FileRejection::DecimalTooWide {
                    column: "amount",
                    dtype: wide.clone(),
                    max_digits: 38,
                },
                format!("column `amount` is {wide:?}: DECIMAL is read up to 38 digits"),
            ),
            (
                FileRejection::UnreadableType {
                    column: "billing_month",
                    dtype: ArrowDataType::Date32,
                },
                "column `billing_month` is Date32: revenue columns must be text, integers or DECIMAL (billing_month as text YYYY-MM)".into(),
            ),
        ];
        for (rejection, text) in cases {
            assert_eq!(rejection.to_string(), text);
        }
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        assert_eq!(FileRejection::from(io).to_string(), "cannot read: gone");
        assert_eq!(
            FileRejection::ParquetReaderFailed {
                cause: "boom".into()
            }
            .to_string(),
            "not a readable Parquet file: the reader failed: boom"
        );
    }
}
