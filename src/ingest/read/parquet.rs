//! Revenue in Parquet (SPEC §2) as DuckDB, Spark, pyarrow and polars write it: the seven
//! columns read a slice at a time along the row groups and turned into text, so that every
//! value goes through the same text checks as a CSV field. DECIMAL is read as its exact decimal
//! text (a scale above 6 is then `INVALID_AMOUNT` per row), integers of any width as digits.
//! A column of any other type (floating point, dates, booleans, binary, nested) rejects the
//! file before a row is read; it must never reach a polars code path this build does not have,
//! and a panic inside polars rejects the file instead of ending the run.

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use polars::prelude::*;

use rayon::prelude::*;

use super::CheckedPart;
use crate::ingest::file_rejection::FileRejection;
use crate::ingest::rows::Rows;
use crate::ingest::segment::{REVENUE_COLUMNS, SEGMENT_ROWS};
use crate::ingest::validate::RowChecker;

/// The widest DECIMAL read: 38 digits, what a 128-bit decimal holds (DuckDB, Spark, pyarrow's
/// `decimal128`); `decimal256` is refused.
const MAX_DECIMAL_PRECISION: usize = 38;

/// Opens a Parquet revenue file: checks that each revenue column is there once with a type
/// read exactly, and returns the slices (first row, rows) to read, in order.
pub fn open(path: &Path) -> Result<Vec<(usize, usize)>, FileRejection> {
    guard(|| {
        let handle = File::open(path)?;
        let mut reader = ParquetReader::new(handle);
        let schema = reader.schema().map_err(FileRejection::NotParquet)?;
        for column in REVENUE_COLUMNS {
            let mut fields = schema.iter().filter(|(name, _)| name.as_str() == column);
            let Some((_, field)) = fields.next() else {
                return Err(FileRejection::MissingColumn { column });
            };
            if fields.next().is_some() {
                return Err(FileRejection::SchemaColumnTwice { column });
            }
            check_type(column, &field.dtype)?;
        }
        let groups: Vec<usize> = reader
            .get_metadata()
            .map_err(FileRejection::NotParquet)?
            .row_groups
            .iter()
            .map(|g| g.num_rows())
            .collect();
        Ok(slices(&groups))
    })
}

/// Whether a column of this Parquet (Arrow) type can be read as exact text.
fn check_type(column: &'static str, dtype: &ArrowDataType) -> Result<(), FileRejection> {
    use ArrowDataType as T;
    match dtype {
        T::Utf8 | T::LargeUtf8 | T::Utf8View | T::Null => Ok(()),
        T::Int8 | T::Int16 | T::Int32 | T::Int64 => Ok(()),
        T::UInt8 | T::UInt16 | T::UInt32 | T::UInt64 => Ok(()),
        T::Decimal(precision, _) | T::Decimal32(precision, _) | T::Decimal64(precision, _)
            if *precision <= MAX_DECIMAL_PRECISION =>
        {
            Ok(())
        }
        T::Dictionary(_, values, _) => check_type(column, values),
        T::Float16 | T::Float32 | T::Float64 => Err(FileRejection::FloatColumn {
            column,
            dtype: dtype.clone(),
        }),
        T::Decimal(..) | T::Decimal32(..) | T::Decimal64(..) | T::Decimal256(..) => {
            Err(FileRejection::DecimalTooWide {
                column,
                dtype: dtype.clone(),
                max_digits: MAX_DECIMAL_PRECISION,
            })
        }
        T::Boolean
        | T::Int128
        | T::UInt128
        | T::Timestamp(..)
        | T::Date32
        | T::Date64
        | T::Time32(_)
        | T::Time64(_)
        | T::Duration(_)
        | T::Interval(_)
        | T::Binary
        | T::FixedSizeBinary(_)
        | T::LargeBinary
        | T::BinaryView
        | T::List(_)
        | T::FixedSizeList(..)
        | T::LargeList(_)
        | T::Struct(_)
        | T::Map(..)
        | T::Extension(_)
        | T::Union(_)
        | T::Unknown => Err(FileRejection::UnreadableType {
            column,
            dtype: dtype.clone(),
        }),
    }
}

/// Slices of a Parquet file read at a time, along its row groups (a slice across two groups
/// decodes both): small groups are read together, large ones in parts, so that memory stays
/// bounded by about a segment whatever the file's layout.
fn slices(groups: &[usize]) -> Vec<(usize, usize)> {
    let mut slices = Vec::new();
    let (mut start, mut rows) = (0, 0);
    for &group in groups {
        if group > 2 * SEGMENT_ROWS {
            if rows > 0 {
                slices.push((start, rows));
            }
            let mut offset = start + rows;
            for part in (0..group).step_by(SEGMENT_ROWS) {
                slices.push((offset, SEGMENT_ROWS.min(group - part)));
                offset += SEGMENT_ROWS.min(group - part);
            }
            (start, rows) = (offset, 0);
            continue;
        }
        rows += group;
        if rows >= SEGMENT_ROWS {
            slices.push((start, rows));
            (start, rows) = (start + rows, 0);
        }
    }
    if rows > 0 {
        slices.push((start, rows));
    }
    slices
}

/// One slice of a Parquet file's rows: the seven columns, as text, in `REVENUE_COLUMNS` order.
pub fn read_slice(path: &Path, offset: usize, length: usize) -> Result<DataFrame, FileRejection> {
    guard(|| {
        let handle = File::open(path)?;
        let projection: Vec<String> = REVENUE_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        let frame = ParquetReader::new(handle)
            .with_columns(Some(projection))
            .with_slice(Some((offset, length)))
            .finish()
            .map_err(FileRejection::NotParquet)?;
        let mut texts = Vec::with_capacity(REVENUE_COLUMNS.len());
        for name in REVENUE_COLUMNS {
            let column = frame.column(name).map_err(FileRejection::SliceColumns)?;
            // `open` checked the file's types; a slice decoded as anything else is refused too.
            // Dictionary-encoded text (pyarrow's `dictionary_encode`, pandas categoricals)
            // comes as a categorical.
            if !(column.dtype().is_string()
                || column.dtype().is_categorical()
                || column.dtype().is_integer()
                || column.dtype().is_decimal()
                || column.dtype().is_null())
            {
                return Err(FileRejection::DecodedAs {
                    column: name,
                    dtype: column.dtype().clone(),
                });
            }
            texts.push(column.cast(&DataType::String).map_err(|source| {
                FileRejection::NotText {
                    column: name,
                    source,
                }
            })?);
        }
        DataFrame::new(frame.height(), texts).map_err(FileRejection::SliceColumns)
    })
}

/// Rows of a slice of text columns; `first_row` is its first row's place in the file. A null
/// is an empty field (`MISSING_FIELD`), never a zero.
pub fn rows(frame: &DataFrame, first_row: usize) -> Result<Rows<'static>, FileRejection> {
    let columns = frame
        .columns()
        .iter()
        .map(|c| c.str().map_err(FileRejection::SliceColumns))
        .collect::<Result<Vec<_>, FileRejection>>()?;
    let mut rows = Rows::default();
    let mut iters: Vec<_> = columns.iter().map(|c| c.iter()).collect();
    for row in 0..frame.height() {
        let fields: [&str; 7] = std::array::from_fn(|i| iters[i].next().flatten().unwrap_or(""));
        // Parquet has no lines: row N (0-based) is reported as line N + 2, as under a header.
        rows.push_owned(fields, None, (first_row + row) as u64 + 2, None)?;
    }
    Ok(rows)
}

/// Runs a polars read, turning a panic inside it into the file's rejection: no input may end
/// the run.
fn guard<T>(read: impl FnOnce() -> Result<T, FileRejection>) -> Result<T, FileRejection> {
    catch_unwind(AssertUnwindSafe(read)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_owned());
        Err(FileRejection::ParquetReaderFailed { cause: what })
    })
}

/// A Parquet slice's rows, cut into a part per core, each part read out and checked there.
/// `offset` is the slice's first row in the file.
pub(super) fn check_parquet(
    checker: &RowChecker,
    frame: &DataFrame,
    offset: usize,
    source_file: &str,
) -> Result<Vec<CheckedPart<'static>>, FileRejection> {
    let parts = rayon::current_num_threads() * 2;
    let size = frame.height().div_ceil(parts).max(1);
    (0..frame.height())
        .step_by(size)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| {
            let part = frame.slice(start as i64, size);
            let rows = rows(&part, offset + start)?;
            let text = part.columns().to_vec();
            CheckedPart::with_text(checker, rows, Some(text), source_file)
                .map_err(FileRejection::Encode)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_follow_row_groups_and_cover_every_row() {
        let s = SEGMENT_ROWS;
        let cases: [&[usize]; 5] = [
            &[],
            &[10],
            &[s + 5, s + 5],
            &[1000; 600],
            &[5 * s + 7, 3, s],
        ];
        for groups in cases {
            let slices = slices(groups);
            let mut next = 0;
            for &(offset, rows) in &slices {
                assert_eq!(offset, next, "{groups:?}");
                assert!(rows > 0 && rows <= 2 * s + 2000, "{groups:?}: {rows}");
                next += rows;
            }
            assert_eq!(next, groups.iter().sum::<usize>(), "{groups:?}");
        }
        assert_eq!(slices(&[s + 5, s + 5]), vec![(0, s + 5), (s + 5, s + 5)]);
    }

    #[test]
    fn a_panic_in_the_reader_rejects_the_file() {
        let result: Result<(), FileRejection> = guard(|| panic!("activate 'dtype-x' feature"));
        assert_eq!(
            result.unwrap_err().to_string(),
            "not a readable Parquet file: the reader failed: activate 'dtype-x' feature"
        );
    }
}
