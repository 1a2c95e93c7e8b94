//! Plain CSV (no quote anywhere, no carriage return but before a newline), the fast path: read
//! in blocks of `BLOCK_BYTES` that end at a line end, each block cut into a part per core and
//! each part split on commas and newlines without copying. It must read every row, field and
//! line number exactly as the `csv` crate would (a proptest checks it); a file it cannot read
//! that way goes to `quoted`.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read};
use std::ops::Range;
use std::path::Path;

use memchr::{memchr, memchr_iter};
use polars::prelude::*;
use rayon::prelude::*;

use super::CheckedPart;
use crate::ingest::file_rejection::FileRejection;
use crate::ingest::rows::{
    BLOCK_BYTES, MAX_FIELD_BYTES, MAX_LINE_BYTES, MAX_RAW_BYTES, RowProblem, Rows, field_problem,
};
use crate::ingest::validate::RowChecker;

/// Reads a plain CSV file in blocks that end at a line end.
pub struct PlainCsvBlocks {
    reader: BufReader<File>,
    block_bytes: usize,
    max_line_bytes: usize,
    carry: Vec<u8>,
    /// The line number of the next block's first line.
    next_line: u64,
    done: bool,
}

/// One block of a plain CSV file.
pub struct PlainBlock {
    pub text: String,
    pub first_line: u64,
    /// A line longer than `MAX_LINE_BYTES`, read past but not kept; the block's text is then
    /// empty.
    pub long_line: Option<LongLine>,
}

/// A line too long to hold: where it is, how long, and its start (for the exceptions report).
pub struct LongLine {
    pub line: u64,
    pub bytes: u64,
    pub start: String,
}

impl PlainCsvBlocks {
    /// Opens the file and reads its header line.
    pub fn open(path: &Path) -> Result<(Self, Vec<String>), FileRejection> {
        Self::open_with_block_size(path, BLOCK_BYTES)
    }

    /// `open` with another block size (tests use tiny blocks to cross every boundary).
    pub fn open_with_block_size(
        path: &Path,
        block_bytes: usize,
    ) -> Result<(Self, Vec<String>), FileRejection> {
        let file = File::open(path)?;
        let mut blocks = Self {
            reader: BufReader::with_capacity(1 << 16, file),
            block_bytes: block_bytes.max(1),
            max_line_bytes: MAX_LINE_BYTES.max(block_bytes),
            carry: Vec::new(),
            next_line: 1,
            done: false,
        };
        // The header is the first line that is not blank (blank lines are skipped before it,
        // as the `csv` crate does).
        let mut line = 1;
        loop {
            let Some(block) = blocks.next_block()? else {
                return Err(FileRejection::NoHeader);
            };
            let text = block.text;
            let mut start = 0;
            while start < text.len() {
                let end = text[start..].find('\n').map_or(text.len(), |at| start + at);
                let header = text[start..end].trim_end_matches('\r');
                let header = header.strip_prefix('\u{feff}').unwrap_or(header);
                if header.is_empty() {
                    line += 1;
                    start = end + 1;
                    continue;
                }
                let headers = header.split(',').map(str::to_owned).collect();
                let rest = text.as_bytes()[(end + 1).min(text.len())..].to_vec();
                blocks.carry.splice(0..0, rest);
                blocks.next_line = line + 1;
                return Ok((blocks, headers));
            }
        }
    }

    /// The next block, or `None` at the end of the file. A block that is not UTF-8 fails the
    /// file, naming the line.
    pub fn next_block(&mut self) -> Result<Option<PlainBlock>, FileRejection> {
        if self.done && self.carry.is_empty() {
            return Ok(None);
        }
        let mut bytes = std::mem::take(&mut self.carry);
        let mut target = self.block_bytes;
        loop {
            while !self.done && bytes.len() < target {
                let start = bytes.len();
                bytes.resize(target, 0);
                let n = self.reader.read(&mut bytes[start..])?;
                bytes.truncate(start + n);
                if n == 0 {
                    self.done = true;
                }
            }
            // A plain file's line ends are record ends: the partial last line waits.
            if let Some(end) = memchr::memrchr(b'\n', &bytes) {
                if !self.done {
                    self.carry = bytes.split_off(end + 1);
                }
                break;
            }
            // No line end: all of it is the start of one line.
            if bytes.len() >= self.max_line_bytes {
                return self.skip_long_line(bytes).map(Some);
            }
            if self.done {
                break;
            }
            target *= 2;
        }
        let first_line = self.next_line;
        self.next_line += memchr_iter(b'\n', &bytes).count() as u64;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = e.utf8_error().valid_up_to();
            let line = first_line + memchr_iter(b'\n', &e.as_bytes()[..valid]).count() as u64;
            FileRejection::NotUtf8 { line }
        })?;
        Ok(Some(PlainBlock {
            text,
            first_line,
            long_line: None,
        }))
    }

    /// Reads past the rest of a line whose first `start.len()` bytes are read already, keeping
    /// only its beginning: memory stays bounded whatever the line's length.
    fn skip_long_line(&mut self, start: Vec<u8>) -> Result<PlainBlock, FileRejection> {
        use std::io::BufRead;
        let line = self.next_line;
        let mut bytes = start.len() as u64;
        while !self.done {
            let buffer = self.reader.fill_buf()?;
            if buffer.is_empty() {
                self.done = true;
                break;
            }
            if let Some(at) = memchr(b'\n', buffer) {
                bytes += at as u64;
                self.reader.consume(at + 1);
                break;
            }
            let length = buffer.len();
            bytes += length as u64;
            self.reader.consume(length);
        }
        self.next_line += 1;
        let kept = &start[..start.len().min(MAX_RAW_BYTES)];
        Ok(PlainBlock {
            text: String::new(),
            first_line: line,
            long_line: Some(LongLine {
                line,
                bytes,
                start: String::from_utf8_lossy(kept).into_owned(),
            }),
        })
    }
}

/// Splits a block into about `parts` ranges that start and end at line boundaries.
pub fn split_lines(text: &str, parts: usize) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::with_capacity(parts);
    let mut start = 0;
    for k in 1..parts {
        let target = (bytes.len() * k / parts).max(start);
        let end = match memchr(b'\n', &bytes[target..]) {
            Some(at) => target + at + 1,
            None => bytes.len(),
        };
        if end > start {
            ranges.push(start..end);
            start = end;
        }
    }
    if start < bytes.len() || ranges.is_empty() {
        ranges.push(start..bytes.len());
    }
    ranges
}

/// Splits the lines of `range` into rows. Lines are numbered from `first_line` (the line of
/// the range's first byte); blank lines are skipped, as the `csv` crate does. A line with
/// another number of fields than `header_fields` is kept with its problem.
pub fn split_plain<'t>(
    text: &'t str,
    range: Range<usize>,
    first_line: u64,
    positions: &[usize; 7],
    header_fields: usize,
) -> Rows<'t> {
    let bytes = text.as_bytes();
    // One pass over the part finds whether any row needs the NUL check at all.
    let has_nul = memchr(0, &bytes[range.clone()]).is_some();
    let widest = positions.iter().copied().max().unwrap_or(0);
    let mut rows = Rows {
        text: Cow::Borrowed(text),
        ..Rows::default()
    };
    let mut line = first_line;
    let mut start = range.start;
    let mut found = vec![(0u32, 0u32); widest + 1];
    let mut push_line = |rows: &mut Rows, start: usize, end: usize, line: u64| {
        let mut end = end;
        if end > start && bytes[end - 1] == b'\r' {
            end -= 1;
        }
        if end == start {
            return;
        }
        let mut count = 0;
        let mut field_start = start;
        for at in memchr_iter(b',', &bytes[start..end]) {
            if count <= widest {
                found[count] = (field_start as u32, (start + at) as u32);
            }
            count += 1;
            field_start = start + at + 1;
        }
        if count <= widest {
            found[count] = (field_start as u32, end as u32);
        }
        count += 1;
        let spans = positions.map(|p| if p < count { found[p] } else { (0, 0) });
        let longest = spans.iter().map(|(s, e)| e - s).max().unwrap_or(0) as usize;
        let problem = if count != header_fields {
            Some(RowProblem::FieldCount {
                found: count,
                expected: header_fields,
            })
        } else if has_nul || longest > MAX_FIELD_BYTES {
            field_problem(&spans.map(|(s, e)| &text[s as usize..e as usize]))
        } else {
            None
        };
        if let Some(problem) = problem {
            rows.problems.push((rows.lines.len() as u32, problem));
        }
        rows.fields.push(spans);
        rows.raw.push(Some((start as u32, end as u32)));
        rows.lines.push(line);
    };
    for at in memchr_iter(b'\n', &bytes[range.clone()]) {
        let end = range.start + at;
        push_line(&mut rows, start, end, line);
        line += 1;
        start = end + 1;
    }
    if start < range.end {
        push_line(&mut rows, start, range.end, line);
    }
    rows
}

/// A plain CSV block split into parts, each part split, checked and laid out in columns on
/// its own core.
pub(super) fn check_plain<'t>(
    checker: &RowChecker,
    block: &'t PlainBlock,
    positions: &[usize; 7],
    header_fields: usize,
    source_file: &str,
) -> PolarsResult<Vec<CheckedPart<'t>>> {
    let mut first_line = block.first_line;
    let ranges: Vec<(Range<usize>, u64)> =
        split_lines(&block.text, rayon::current_num_threads() * 2)
            .into_iter()
            .map(|range| {
                let line = first_line;
                first_line += memchr::memchr_iter(b'\n', &block.text.as_bytes()[range.clone()])
                    .count() as u64;
                (range, line)
            })
            .collect();
    ranges
        .into_par_iter()
        .map(|(range, line)| {
            let rows = split_plain(&block.text, range, line, positions, header_fields);
            CheckedPart::new(checker, rows, source_file)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ingest::files::is_plain_csv;
    use crate::ingest::rows::column_positions;

    /// Rows as the `csv` crate reads them: the reference the plain path must match.
    fn with_csv_crate(path: &Path) -> Vec<([String; 7], u64)> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .unwrap();
        let headers: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_owned())
            .collect();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let positions = column_positions(&headers).unwrap();
        let text = std::fs::read(path).unwrap();
        reader
            .records()
            .map(|record| {
                let record = record.unwrap();
                // The physical line: the csv crate's own count skips blank lines.
                let mut byte = record.position().unwrap().byte() as usize;
                while matches!(text.get(byte), Some(b'\r' | b'\n')) {
                    byte += 1;
                }
                let line = 1 + memchr_iter(b'\n', &text[..byte]).count() as u64;
                (
                    positions.map(|p| record.get(p).unwrap_or("").to_owned()),
                    line,
                )
            })
            .collect()
    }

    fn with_plain_path(path: &Path, block_bytes: usize, parts: usize) -> Vec<([String; 7], u64)> {
        assert!(is_plain_csv(path).unwrap());
        let (mut blocks, headers) =
            PlainCsvBlocks::open_with_block_size(path, block_bytes).unwrap();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let positions = column_positions(&headers).unwrap();
        let mut out = Vec::new();
        while let Some(block) = blocks.next_block().unwrap() {
            let mut first_line = block.first_line;
            for range in split_lines(&block.text, parts) {
                let lines = memchr_iter(b'\n', &block.text.as_bytes()[range.clone()]).count();
                let rows = split_plain(&block.text, range, first_line, &positions, headers.len());
                for row in 0..rows.len() {
                    out.push((rows.fields(row).map(str::to_owned), rows.lines[row]));
                }
                first_line += lines as u64;
            }
        }
        out
    }

    fn field() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-z0-9.-]{0,6}").unwrap()
    }

    proptest! {
        #[test]
        fn plain_split_matches_the_csv_crate(
            rows in proptest::collection::vec((proptest::collection::vec(field(), 1..10), 0u8..8), 0..40),
            crlf in any::<bool>(),
            bom in any::<bool>(),
            blank_before_header in 0usize..3,
            trailing_newline in any::<bool>(),
            block_bytes in 1usize..200,
            parts in 1usize..5,
        ) {
            let end = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            if bom {
                text.push('\u{feff}');
            }
            for _ in 0..blank_before_header {
                text.push_str(end);
            }
            text.push_str("extra,record_id,partner_id,customer_id,product_category,billing_month,amount,currency");
            for (fields, blank) in &rows {
                text.push_str(end);
                if *blank == 0 {
                    // A blank line, which both paths skip.
                    text.push_str(end);
                }
                text.push_str(&fields.join(","));
            }
            if trailing_newline {
                text.push_str(end);
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("revenue.csv");
            std::fs::write(&path, &text).unwrap();
            prop_assert_eq!(with_plain_path(&path, block_bytes, parts), with_csv_crate(&path));
        }
    }

    #[test]
    fn a_block_that_is_not_utf8_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(&path, b"a,b\n1,2\n3,\xff\n").unwrap();
        let (mut blocks, _) = PlainCsvBlocks::open_with_block_size(&path, 4).unwrap();
        let error = loop {
            match blocks.next_block() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("read to the end"),
                Err(e) => break e,
            }
        };
        assert_eq!(error.to_string(), "not UTF-8 (line 3)");
    }
}
