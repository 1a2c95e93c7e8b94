//! The CSV reader of one master-data table: the file read whole (optional files may be
//! absent), its header checked (every column the caller reads there exactly once, no NUL
//! byte), each data row handed to the caller with its physical line, and the field parsers the
//! tables share. It knows no table's meaning; the caller in `master` does.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::{InputFile, MasterDataError, sha256_hex};
use crate::domain::partner::{Partner, Validity};
use crate::domain::period::parse_date;
use crate::ingest::lines::{LineCounter, line_of_offset};
use crate::ingest::warning::Warnings;

pub(super) fn read_file(
    path: &Path,
    name: &str,
    required: bool,
    warnings: &mut Warnings,
) -> Result<Option<Vec<u8>>, MasterDataError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            tracing::warn!(
                file = name,
                "optional master-data file is missing; read as empty"
            );
            warnings.push(name, None, "optional file is missing; read as empty");
            Ok(None)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(MasterDataError::MissingFile { file: name.into() })
        }
        Err(source) => Err(MasterDataError::Io {
            file: name.into(),
            source,
        }),
    }
}

/// One data row of a master-data CSV, with the physical line it starts on.
pub(super) struct Row<'a> {
    file: &'a str,
    line: u64,
    record: &'a csv::StringRecord,
    columns: &'a HashMap<&'static str, usize>,
}

impl Row<'_> {
    /// The field exactly as given: for text shown to people (names), which keeps its spaces,
    /// tabs and leading `=` (the report writers quote and prefix it, SPEC §5).
    pub(super) fn given(&self, column: &'static str) -> &str {
        // Invariant: `columns` holds the position of every column the caller reads, and a
        // record has as many fields as the header (the reader is not flexible).
        self.record.get(self.columns[column]).unwrap_or("")
    }

    /// The field trimmed of surrounding spaces: for identifiers and codes (hand-edited
    /// snapshots often have the spaces).
    pub(super) fn text(&self, column: &'static str) -> &str {
        self.given(column).trim()
    }

    pub(super) fn invalid(&self, column: &'static str, problem: String) -> MasterDataError {
        MasterDataError::InvalidField {
            file: self.file.into(),
            line: self.line,
            column,
            problem,
        }
    }

    pub(super) fn parse<T>(
        &self,
        column: &'static str,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Result<T, MasterDataError> {
        let text = self.text(column);
        parse(text).ok_or_else(|| self.invalid(column, format!("`{text}` is not {expected}")))
    }

    /// An email address mail can be sent to, checked now rather than at `send`: a line break
    /// anywhere in the field (even around the address) could inject mail headers.
    pub(super) fn email(&self, column: &'static str) -> Result<String, MasterDataError> {
        if self.given(column).contains(['\r', '\n']) {
            return Err(self.invalid(column, "the email address contains a line break".into()));
        }
        let text = self.text(column);
        match text.parse::<lettre::Address>() {
            Ok(_) => Ok(text.to_owned()),
            Err(e) => Err(self.invalid(column, format!("`{text}` is not an email address ({e})"))),
        }
    }

    pub(super) fn validity(&self) -> Result<Validity, MasterDataError> {
        let valid_from = self.parse("valid_from", parse_date, "a date YYYY-MM-DD")?;
        let valid_to = self.parse("valid_to", optional_date, "a date YYYY-MM-DD or empty")?;
        if valid_to.is_some_and(|to| to < valid_from) {
            return Err(self.invalid("valid_to", "is before valid_from".into()));
        }
        Ok(Validity {
            valid_from,
            valid_to,
        })
    }
}

/// The row's partner id; a partner that is not in `partners.csv` is a warning (the row is
/// kept but no partner reads it).
pub(super) fn known_partner(
    row: &Row,
    partners: &BTreeMap<String, Partner>,
    warnings: &mut Warnings,
) -> Result<String, MasterDataError> {
    let id = row.parse("partner_id", partner_id, "digits")?;
    if !partners.contains_key(&id) {
        warnings.push(
            row.file,
            Some(row.line),
            format!("partner `{id}` is not in partners.csv; row not used"),
        );
    }
    Ok(id)
}

pub(super) fn partner_id(text: &str) -> Option<String> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.to_owned())
}

/// A competency code: not empty (it must be able to match a program's requirement).
pub(super) fn code(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

pub(super) fn country(text: &str) -> Option<String> {
    (text.len() == 2 && text.bytes().all(|b| b.is_ascii_uppercase())).then(|| text.to_owned())
}

pub(super) fn optional_date(text: &str) -> Option<Option<NaiveDate>> {
    if text.is_empty() {
        Some(None)
    } else {
        parse_date(text).map(Some)
    }
}

pub(super) fn boolean(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Reads a CSV snapshot file, calling `on_row` for each data row. Returns the file's hash,
/// or `None` when an optional file is absent.
pub(super) fn read_table(
    dir: &Path,
    name: &str,
    required: bool,
    warnings: &mut Warnings,
    columns: &[&'static str],
    mut on_row: impl FnMut(&Row, &mut Warnings) -> Result<(), MasterDataError>,
) -> Result<Option<InputFile>, MasterDataError> {
    let path: PathBuf = dir.join(name);
    let Some(bytes) = read_file(&path, name, required, warnings)? else {
        return Ok(None);
    };
    if let Err(e) = std::str::from_utf8(&bytes) {
        return Err(MasterDataError::NotUtf8 {
            file: name.into(),
            line: line_of_offset(&bytes, e.valid_up_to()),
        });
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    // The csv crate counts only `\n` as a line end; line numbers come from byte offsets.
    let mut lines = LineCounter::new(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| MasterDataError::Malformed {
            file: name.into(),
            line: e
                .position()
                .map_or(1, |p| lines.record_line(p.byte() as usize)),
            problem: e.to_string(),
        })?
        .clone();
    let nul_in = |record: &csv::StringRecord, line: u64| {
        record
            .iter()
            .position(|field| field.contains('\0'))
            .map(|at| MasterDataError::NulByte {
                file: name.into(),
                line,
                column: headers
                    .get(at)
                    .map_or_else(|| format!("#{}", at + 1), |h| h.trim().to_owned()),
            })
    };
    if let Some(error) = nul_in(&headers, 1) {
        return Err(error);
    }
    let mut index = HashMap::new();
    for &column in columns {
        let mut positions = headers
            .iter()
            .enumerate()
            .filter(|(_, h)| h.trim() == column)
            .map(|(at, _)| at);
        let position = positions.next().ok_or(MasterDataError::MissingColumn {
            file: name.into(),
            column,
        })?;
        if positions.next().is_some() {
            return Err(MasterDataError::DuplicateColumn {
                file: name.into(),
                column,
            });
        }
        index.insert(column, position);
    }
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record
                    .position()
                    .map_or(0, |p| lines.record_line(p.byte() as usize));
                if let Some(error) = nul_in(&record, line) {
                    return Err(error);
                }
                if record.iter().all(|f| f.trim().is_empty()) {
                    continue; // a blank line carries no row
                }
                on_row(
                    &Row {
                        file: name,
                        line,
                        record: &record,
                        columns: &index,
                    },
                    warnings,
                )?;
            }
            Err(e) => {
                let line = e
                    .position()
                    .map_or(0, |p| lines.record_line(p.byte() as usize));
                // The crate's own message carries its `\n`-only line count: said plainly instead.
                let problem = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("the row has {len} field(s) but the header has {expected_len}"),
                    _ => e.to_string(),
                };
                return Err(MasterDataError::Malformed {
                    file: name.into(),
                    line,
                    problem,
                });
            }
        }
    }
    Ok(Some(InputFile {
        name: name.into(),
        sha256: sha256_hex(&bytes),
    }))
}
