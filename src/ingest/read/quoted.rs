//! CSV files that quote (or end lines with a lone carriage return): read through the `csv`
//! crate a segment's worth of rows at a time, with the physical line of each record and the
//! record re-written as one CSV line for its raw text. Never used for plain files, which the
//! plain path reads faster.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::Source;
use crate::ingest::rows::{
    BLOCK_BYTES, MAX_RAW_BYTES, RowProblem, Rows, bounded, column_positions,
};
use crate::ingest::segment::SEGMENT_ROWS;

/// A record as one CSV line, quoted where needed.
fn csv_line(texts: &[&str]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let _ = writer.write_record(texts);
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .trim_end_matches('\n')
        .to_owned()
}

pub(super) fn open_quoted_csv(path: &Path) -> Result<Source, String> {
    let handle = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(BufReader::with_capacity(1 << 20, handle));
    let header_record = reader
        .byte_headers()
        .map_err(|e| format!("not CSV: {e}"))?
        .clone();
    std::str::from_utf8(header_record.as_slice()).map_err(|_| "not UTF-8 (line 1)".to_owned())?;
    let headers: Vec<&str> = header_record
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = std::str::from_utf8(h).unwrap_or("");
            if i == 0 {
                h.trim_start_matches('\u{feff}')
            } else {
                h
            }
        })
        .collect();
    let positions = column_positions(&headers)?;
    Ok(Source::Quoted {
        reader,
        positions,
        header_fields: headers.len(),
        lines: LineCounter::open(path).map_err(|e| format!("cannot read: {e}"))?,
    })
}

/// Physical line numbers of byte offsets, read forward through the file once: the `csv` crate
/// does not count blank lines, and a line number must be the one an editor shows. A line ends
/// at `\n`, `\r\n` or a lone `\r` (old Mac and some Excel exports), as the `csv` crate reads it.
pub(super) struct LineCounter {
    reader: BufReader<File>,
    at: u64,
    line: u64,
    /// The last byte counted was a carriage return: a `\n` right after it ends no new line.
    after_cr: bool,
}

impl LineCounter {
    fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            reader: BufReader::with_capacity(1 << 16, File::open(path)?),
            at: 0,
            line: 1,
            after_cr: false,
        })
    }

    /// The line where a record starting at byte `offset` has its first character; offsets
    /// must not go backwards.
    fn line_at(&mut self, offset: u64) -> std::io::Result<u64> {
        use std::io::BufRead;
        while self.at < offset {
            let buffer = self.reader.fill_buf()?;
            if buffer.is_empty() {
                break;
            }
            let take = buffer.len().min((offset - self.at) as usize);
            let (ends, after_cr) = line_ends(&buffer[..take], self.after_cr);
            (self.line, self.after_cr) = (self.line + ends, after_cr);
            self.reader.consume(take);
            self.at += take as u64;
        }
        // The csv crate's record starts after the last terminator, before skipped blank lines.
        loop {
            let first = self.reader.fill_buf()?.first().copied();
            match first {
                Some(byte @ (b'\n' | b'\r')) => {
                    let (ends, after_cr) = line_ends(&[byte], self.after_cr);
                    (self.line, self.after_cr) = (self.line + ends, after_cr);
                }
                _ => break,
            }
            self.reader.consume(1);
            self.at += 1;
        }
        Ok(self.line)
    }
}

/// How many lines end in `bytes` (`\n`, `\r\n` or a lone `\r`), and whether it ends in `\r`;
/// `after_cr`: the byte before `bytes` was a carriage return.
fn line_ends(bytes: &[u8], after_cr: bool) -> (u64, bool) {
    let mut ends = 0;
    for at in memchr::memchr2_iter(b'\r', b'\n', bytes) {
        let follows_cr = if at == 0 {
            after_cr
        } else {
            bytes[at - 1] == b'\r'
        };
        if bytes[at] == b'\r' || !follows_cr {
            ends += 1;
        }
    }
    (ends, bytes.last().map_or(after_cr, |&b| b == b'\r'))
}

/// Up to a segment's worth of rows through the `csv` crate (files that quote).
pub(super) fn read_quoted(
    reader: &mut csv::Reader<BufReader<File>>,
    positions: &[usize; 7],
    header_fields: usize,
    lines: &mut LineCounter,
) -> Result<Rows<'static>, String> {
    let mut record = csv::ByteRecord::new();
    let mut rows = Rows::default();
    while rows.len() < SEGMENT_ROWS && rows.text.len() < BLOCK_BYTES {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = match e.position() {
                    Some(p) => lines
                        .line_at(p.byte())
                        .map_err(|e| format!("cannot read: {e}"))?,
                    None => 0,
                };
                return Err(format!("not CSV (line {line}): {e}"));
            }
        }
        let line = match record.position() {
            Some(p) => lines
                .line_at(p.byte())
                .map_err(|e| format!("cannot read: {e}"))?,
            None => 0,
        };
        let mut texts: Vec<&str> = Vec::with_capacity(record.len());
        for field in record.iter() {
            texts.push(std::str::from_utf8(field).map_err(|_| format!("not UTF-8 (line {line})"))?);
        }
        let fields = positions.map(|p| texts.get(p).copied().unwrap_or(""));
        let problem = (texts.len() != header_fields).then_some(RowProblem::FieldCount {
            found: texts.len(),
            expected: header_fields,
        });
        let raw = csv_line(&texts);
        rows.push_owned(fields, Some(&bounded(&raw, MAX_RAW_BYTES)), line, problem)?;
    }
    Ok(rows)
}
