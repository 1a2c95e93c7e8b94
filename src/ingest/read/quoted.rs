//! CSV files that quote (or end lines with a lone carriage return): read through the `csv`
//! crate a segment's worth of rows at a time, with the physical line of each record and the
//! record re-written as one CSV line for its raw text. Never used for plain files, which the
//! plain path reads faster.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::Source;
use crate::ingest::file_rejection::FileRejection;
use crate::ingest::lines::FileLineCounter;
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

pub(super) fn open_quoted_csv(path: &Path) -> Result<Source, FileRejection> {
    let handle = File::open(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(BufReader::with_capacity(1 << 20, handle));
    let header_record = reader
        .byte_headers()
        .map_err(FileRejection::NotCsv)?
        .clone();
    std::str::from_utf8(header_record.as_slice())
        .map_err(|_| FileRejection::NotUtf8 { line: 1 })?;
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
    let unnamed = (0..headers.len())
        .filter(|&at| headers[at].is_empty())
        .collect();
    Ok(Source::Quoted {
        reader,
        positions,
        header_fields: headers.len(),
        unnamed,
        lines: FileLineCounter::open(path)?,
    })
}

/// Up to a segment's worth of rows through the `csv` crate (files that quote).
pub(super) fn read_quoted(
    reader: &mut csv::Reader<BufReader<File>>,
    positions: &[usize; 7],
    header_fields: usize,
    unnamed: &[usize],
    lines: &mut FileLineCounter,
) -> Result<Rows<'static>, FileRejection> {
    let mut record = csv::ByteRecord::new();
    let mut rows = Rows::default();
    while rows.len() < SEGMENT_ROWS && rows.text.len() < BLOCK_BYTES {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = match e.position() {
                    Some(p) => lines.record_line(p.byte())?,
                    None => 0,
                };
                return Err(FileRejection::NotCsvAt { line, source: e });
            }
        }
        let line = match record.position() {
            Some(p) => lines.record_line(p.byte())?,
            None => 0,
        };
        let mut texts: Vec<&str> = Vec::with_capacity(record.len());
        for field in record.iter() {
            texts.push(std::str::from_utf8(field).map_err(|_| FileRejection::NotUtf8 { line })?);
        }
        let fields = positions.map(|p| texts.get(p).copied().unwrap_or(""));
        let problem = if texts.len() != header_fields {
            Some(RowProblem::FieldCount {
                found: texts.len(),
                expected: header_fields,
            })
        } else {
            unnamed
                .iter()
                .find(|&&at| !texts[at].is_empty())
                .map(|&at| RowProblem::ValueWithoutHeader { field: at + 1 })
        };
        let raw = csv_line(&texts);
        rows.push_owned(fields, Some(&bounded(&raw, MAX_RAW_BYTES)), line, problem)?;
    }
    Ok(rows)
}
