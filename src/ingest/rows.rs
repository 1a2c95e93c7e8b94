//! Revenue rows as text, a block at a time: the seven fields of each row as byte ranges into
//! the block's text, with the row's line and its raw content: the one shape that the plain CSV
//! splitter, the `csv` crate path and the Parquet reader (`read::{plain, quoted, parquet}`) all
//! produce, with the limits every reader keeps. A row that cannot be read
//! exactly (another number of fields than the header, a NUL byte, a field or line past its
//! limit) keeps its problem next to it: it is rejected alone, never truncated or padded.

use std::borrow::Cow;

use memchr::memchr;

use super::file_rejection::FileRejection;

use super::segment::REVENUE_COLUMNS;

/// Bytes of CSV text read at a time: bounds memory whatever the file's size.
pub const BLOCK_BYTES: usize = 16 << 20;

/// The longest revenue field: ids, codes, months and amounts are short; anything longer is
/// not a revenue field, and keeping it would multiply memory and the exceptions report.
pub const MAX_FIELD_BYTES: usize = 1024;

/// A plain CSV line longer than this is rejected alone without being held in memory whole
/// (lines shorter than a block are read whole; their fields are then bounded by
/// `MAX_FIELD_BYTES`).
pub const MAX_LINE_BYTES: usize = BLOCK_BYTES;

/// Bytes of a rejected row's raw text kept for the exceptions report, and of its detail.
pub const MAX_RAW_BYTES: usize = 4096;
pub const MAX_DETAIL_BYTES: usize = 1024;

/// `text` cut to at most `limit` bytes (at a character boundary), saying how long it was.
pub fn bounded(text: &str, limit: usize) -> Cow<'_, str> {
    if text.len() <= limit {
        return Cow::Borrowed(text);
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes in all)", &text[..end], text.len()))
}

/// Why a row cannot be read exactly; it is rejected as `MALFORMED_ROW`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowProblem {
    /// Another number of fields than the header has.
    FieldCount { found: usize, expected: usize },
    /// A NUL byte in one of the seven revenue fields.
    NulByte { column: &'static str },
    /// A revenue field longer than `MAX_FIELD_BYTES`.
    FieldTooLong { column: &'static str, bytes: usize },
    /// A line longer than `MAX_LINE_BYTES`; only its start is kept.
    LineTooLong { bytes: u64 },
    /// A value under a column the header leaves unnamed (a trailing comma): the row has
    /// shifted, as an unquoted `1,234.50` shifts it.
    ValueWithoutHeader { field: usize },
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowProblem::FieldCount { found, expected } => {
                write!(f, "the row has {found} fields, the header has {expected}")
            }
            RowProblem::NulByte { column } => write!(f, "`{column}` contains a NUL byte"),
            RowProblem::FieldTooLong { column, bytes } => write!(
                f,
                "`{column}` is {bytes} bytes long, more than the limit of {MAX_FIELD_BYTES}"
            ),
            RowProblem::ValueWithoutHeader { field } => write!(
                f,
                "field {field} has a value, but its column has no name in the header"
            ),
            RowProblem::LineTooLong { bytes } => write!(
                f,
                "the line is {bytes} bytes long, more than the limit of {MAX_LINE_BYTES}"
            ),
        }
    }
}

/// The first problem of a row's seven fields (NUL byte, length), if any.
pub fn field_problem(fields: &[&str; 7]) -> Option<RowProblem> {
    for (field, column) in fields.iter().zip(REVENUE_COLUMNS) {
        if field.len() > MAX_FIELD_BYTES {
            return Some(RowProblem::FieldTooLong {
                column,
                bytes: field.len(),
            });
        }
        if memchr(0, field.as_bytes()).is_some() {
            return Some(RowProblem::NulByte { column });
        }
    }
    None
}

/// A byte range into a block's text.
pub type Span = (u32, u32);

/// Rows over one block of text, borrowed (plain CSV) or owned (quoted CSV, Parquet).
#[derive(Debug, Default)]
pub struct Rows<'t> {
    pub text: Cow<'t, str>,
    /// The seven fields of each row, in `REVENUE_COLUMNS` order.
    pub fields: Vec<[Span; 7]>,
    /// The row as read, for rejections; `None`: the fields joined by commas (Parquet, which
    /// has no text of its own, so none is kept for the rows that are not rejected).
    pub raw: Vec<Option<Span>>,
    pub lines: Vec<u64>,
    /// Rows that cannot be read exactly, by row index, in order (few or none).
    pub problems: Vec<(u32, RowProblem)>,
}

impl<'t> Rows<'t> {
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn fields(&self, row: usize) -> [&str; 7] {
        self.fields[row].map(|span| self.slice(span))
    }

    pub fn field(&self, row: usize, field: usize) -> &str {
        self.slice(self.fields[row][field])
    }

    pub fn raw(&self, row: usize) -> Cow<'_, str> {
        match self.raw[row] {
            Some(span) => Cow::Borrowed(self.slice(span)),
            None => Cow::Owned(self.fields(row).join(",")),
        }
    }

    fn slice(&self, (start, end): Span) -> &str {
        &self.text[start as usize..end as usize]
    }

    /// Splits rows into about `parts` runs of rows, in order, over the same text.
    pub fn split(&self, parts: usize) -> Vec<Rows<'_>> {
        let size = self.len().div_ceil(parts.max(1)).max(1);
        let mut out = Vec::with_capacity(parts);
        let mut start = 0;
        while start < self.len() {
            let end = (start + size).min(self.len());
            out.push(Rows {
                text: Cow::Borrowed(self.text.as_ref()),
                fields: self.fields[start..end].to_vec(),
                raw: self.raw[start..end].to_vec(),
                lines: self.lines[start..end].to_vec(),
                problems: self
                    .problems
                    .iter()
                    .filter(|(row, _)| (start..end).contains(&(*row as usize)))
                    .map(|(row, problem)| (*row - start as u32, problem.clone()))
                    .collect(),
            });
            start = end;
        }
        out
    }

    /// Appends a row whose fields are owned elsewhere (quoted CSV, Parquet); `raw: None` for
    /// the fields joined by commas; `problem`: what the reader found wrong with the row
    /// (the fields' own problems are checked here). Fails if the rows' text would pass 4 GiB
    /// (spans are 32-bit).
    pub fn push_owned(
        &mut self,
        fields: [&str; 7],
        raw: Option<&str>,
        line: u64,
        problem: Option<RowProblem>,
    ) -> Result<(), FileRejection> {
        if let Some(problem) = problem.or_else(|| field_problem(&fields)) {
            self.problems.push((self.len() as u32, problem));
        }
        let adding = fields.iter().map(|f| f.len()).sum::<usize>() + raw.map_or(0, str::len);
        if self.text.len() + adding > u32::MAX as usize {
            return Err(FileRejection::BlockTooLarge { line });
        }
        let mut push = |text: &str| {
            let owned = self.text.to_mut();
            let start = owned.len() as u32;
            owned.push_str(text);
            (start, owned.len() as u32)
        };
        let spans = fields.map(&mut push);
        let raw = raw.map(push);
        self.fields.push(spans);
        self.raw.push(raw);
        self.lines.push(line);
        Ok(())
    }
}

/// Column positions of the seven fields in a header. A column named twice is ambiguous and
/// rejects the file (empty names, which spreadsheets leave after a trailing comma, excepted).
pub fn column_positions(headers: &[&str]) -> Result<[usize; 7], FileRejection> {
    for (at, name) in headers.iter().enumerate() {
        if !name.is_empty() && headers[..at].contains(name) {
            return Err(FileRejection::HeaderColumnTwice {
                column: (*name).to_owned(),
            });
        }
    }
    let mut positions = [0usize; 7];
    for (slot, column) in positions.iter_mut().zip(REVENUE_COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| *h == column)
            .ok_or(FileRejection::MissingColumn { column })?;
    }
    Ok(positions)
}
