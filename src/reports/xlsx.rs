//! `payouts.xlsx` (issue 15): the folder's CSV reports as one workbook, a sheet each for
//! payouts, eligibility, exceptions, summary and changes. Built from the CSV files just
//! written, so it has the same rows and values. Money is a numeric cell with the currency's
//! decimals as its number format (only when the number reads back as exactly the CSV's text;
//! otherwise the text is kept), counts are integers, everything else is a text cell: text is
//! written with `write_string`, never as a formula. The header row is bold, frozen and filtered,
//! and columns are as wide as their longest cell.

use std::path::Path;

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use crate::domain::money::Currency;

/// The file name, in every report folder.
pub const WORKBOOK: &str = "payouts.xlsx";

/// Excel's rows per sheet, header included.
const MAX_SHEET_ROWS: usize = 1_048_576;
/// The widest column set, in characters: wider cells wrap in Excel's own view.
const MAX_COLUMN_CHARS: usize = 60;
/// f64 holds every integer up to 2^53 exactly.
const MAX_EXACT_INTEGER: i64 = 1 << 53;

#[derive(Debug, thiserror::Error)]
pub enum WorkbookError {
    #[error("{file}: {source}")]
    Csv { file: String, source: csv::Error },
    #[error("payouts.xlsx: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("payouts.xlsx: {0}")]
    Io(#[from] std::io::Error),
}

/// One sheet: its CSV file, its money columns (in the row's `currency`) and integer columns.
struct Sheet {
    name: &'static str,
    file: &'static str,
    money: &'static [&'static str],
    integers: &'static [&'static str],
}

const SHEETS: [Sheet; 5] = [
    Sheet {
        name: "payouts",
        file: "payouts.csv",
        money: &[
            "earned",
            "adjustments",
            "released",
            "carried_in",
            "payable",
            "carried",
            "held",
            "payable_if_resolved",
        ],
        integers: &[],
    },
    Sheet {
        name: "eligibility",
        file: "eligibility.csv",
        money: &[],
        integers: &["revenue_lines"],
    },
    Sheet {
        name: "exceptions",
        file: "exceptions.csv",
        money: &["amount"],
        integers: &["line"],
    },
    Sheet {
        name: "summary",
        file: "summary.csv",
        money: &[
            "payable",
            "held",
            "carried",
            "earned",
            "adjustments",
            "released",
        ],
        integers: &["partners"],
    },
    Sheet {
        name: "changes",
        file: super::CHANGES_FILE,
        money: &[],
        integers: &[],
    },
];

/// How a column is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Money,
    Integer,
}

/// Writes `payouts.xlsx` into `dir` from the CSV reports there, and syncs it.
pub fn write_workbook(dir: &Path) -> Result<(), WorkbookError> {
    let mut workbook = Workbook::new();
    // A fixed creation time: the same reports give the same workbook bytes, and the time the
    // folder was made is in manifest.json (the workbook would otherwise read the wall clock).
    let fixed = ExcelDateTime::from_ymd(2000, 1, 1)?;
    workbook.set_properties(&DocProperties::new().set_creation_datetime(&fixed));
    let header = Format::new().set_bold();
    let integer = Format::new().set_num_format("0");
    // Number formats by minor units: 0 → "0", 2 → "0.00", …
    let money_formats: Vec<Format> = (0..=4)
        .map(|places| {
            let format = match places {
                0 => "0".to_owned(),
                n => format!("0.{}", "0".repeat(n)),
            };
            Format::new().set_num_format(format)
        })
        .collect();
    for sheet in &SHEETS {
        let rows = read_csv(&dir.join(sheet.file))?;
        // Rows go to a temporary file as they are written: 100,000 partners cost no memory here.
        let worksheet = workbook.add_worksheet_with_constant_memory()?;
        worksheet.set_name(sheet.name)?;
        let Some((names, body)) = rows.split_first() else {
            continue;
        };
        let kinds: Vec<Kind> = names
            .iter()
            .map(|name| {
                if sheet.money.contains(&name.as_str()) {
                    Kind::Money
                } else if sheet.integers.contains(&name.as_str()) {
                    Kind::Integer
                } else {
                    Kind::Text
                }
            })
            .collect();
        let currency_at = names.iter().position(|n| n == "currency");
        let mut widths: Vec<usize> = names.iter().map(|n| display_width(n)).collect();
        for (col, name) in names.iter().enumerate() {
            worksheet.write_string_with_format(0, col as u16, name, &header)?;
        }
        // Rows beyond a sheet's limit are not dropped unseen: the last row says where they are.
        let shown = if body.len() > MAX_SHEET_ROWS - 1 {
            MAX_SHEET_ROWS - 2
        } else {
            body.len()
        };
        if shown < body.len() {
            let note = format!(
                "{} more row(s) than a sheet holds: see {}",
                body.len() - shown,
                sheet.file
            );
            worksheet.write_string((shown + 1) as u32, 0, note)?;
        }
        for (at, cells) in body.iter().take(shown).enumerate() {
            let row = (at + 1) as u32;
            let places = currency_at
                .and_then(|c| cells.get(c))
                .and_then(|code| Currency::parse(code))
                .and_then(|c| c.minor_units().ok())
                .map(|m| m as usize);
            for (col, text) in cells.iter().enumerate() {
                let col_number = col as u16;
                widths[col] = widths[col].max(display_width(text));
                let kind = kinds.get(col).copied().unwrap_or(Kind::Text);
                match (kind, places) {
                    (Kind::Money, Some(places)) if places < money_formats.len() => {
                        match exact_money(text, places) {
                            Some(value) => worksheet.write_number_with_format(
                                row,
                                col_number,
                                value,
                                &money_formats[places],
                            )?,
                            None => worksheet.write_string(
                                row,
                                col_number,
                                excel_text(text, sheet.file),
                            )?,
                        }
                    }
                    (Kind::Integer, _) => match exact_integer(text) {
                        Some(value) => {
                            worksheet.write_number_with_format(row, col_number, value, &integer)?
                        }
                        None => {
                            worksheet.write_string(row, col_number, excel_text(text, sheet.file))?
                        }
                    },
                    (Kind::Text | Kind::Money, _) => {
                        worksheet.write_string(row, col_number, excel_text(text, sheet.file))?
                    }
                };
            }
        }
        finish_sheet(
            worksheet,
            names.len(),
            shown + usize::from(shown < body.len()),
            &widths,
        )?;
    }
    let path = dir.join(WORKBOOK);
    workbook.save(&path)?;
    std::fs::File::open(&path)?.sync_all()?;
    Ok(())
}

/// A cell's text within Excel's limit of 32,767 characters; a longer one is cut with a note
/// naming the CSV that has it whole (a derived workbook must never block a report).
fn excel_text<'a>(text: &'a str, file: &str) -> std::borrow::Cow<'a, str> {
    const MAX_CELL_CHARS: usize = 32_767;
    if text.chars().count() <= MAX_CELL_CHARS {
        return std::borrow::Cow::Borrowed(text);
    }
    let note = format!(" … [cut: the whole text is in {file}]");
    let kept: String = text
        .chars()
        .take(MAX_CELL_CHARS - note.chars().count())
        .collect();
    std::borrow::Cow::Owned(kept + &note)
}

/// Frozen, filtered header row and fitted column widths.
fn finish_sheet(
    worksheet: &mut Worksheet,
    columns: usize,
    rows: usize,
    widths: &[usize],
) -> Result<(), XlsxError> {
    if columns == 0 {
        return Ok(());
    }
    worksheet.set_freeze_panes(1, 0)?;
    worksheet.autofilter(0, 0, rows as u32, (columns - 1) as u16)?;
    for (col, width) in widths.iter().enumerate() {
        // Room for the filter button.
        let chars = (*width + 3).min(MAX_COLUMN_CHARS);
        worksheet.set_column_width(col as u16, chars as f64)?;
    }
    Ok(())
}

fn read_csv(path: &Path) -> Result<Vec<Vec<String>>, WorkbookError> {
    let failed = |source| WorkbookError::Csv {
        file: path.display().to_string(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .map_err(failed)?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(failed)?;
        let mut cells: Vec<String> = record.iter().map(str::to_owned).collect();
        if rows.is_empty()
            && let Some(first) = cells.first_mut()
        {
            // A report written with `--csv-bom` starts with one.
            *first = first.trim_start_matches('\u{feff}').to_owned();
        }
        rows.push(cells);
    }
    Ok(rows)
}

/// `text` as a number when it reads back, with `places` decimals, as exactly `text`.
fn exact_money(text: &str, places: usize) -> Option<f64> {
    let value: f64 = text.parse().ok()?;
    let shown = format!("{value:.places$}");
    // `-0.00` never appears in a report (SPEC §7.12), so a zero shows as `0.00`.
    (shown == text || (value == 0.0 && shown.trim_start_matches('-') == text)).then_some(value)
}

fn exact_integer(text: &str) -> Option<f64> {
    let value: i64 = text.parse().ok()?;
    (value.abs() <= MAX_EXACT_INTEGER).then_some(value as f64)
}

/// Characters, counting East Asian wide characters twice, as a spreadsheet shows them.
fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| if (c as u32) >= 0x1100 { 2 } else { 1 })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_beyond_a_cells_limit_is_cut_with_a_note_not_refused() {
        let long = "x".repeat(40_000);
        let cut = excel_text(&long, "changes.csv");
        assert_eq!(cut.chars().count(), 32_767);
        assert!(
            cut.ends_with("[cut: the whole text is in changes.csv]"),
            "{}",
            &cut[32_700..]
        );
        assert_eq!(excel_text("Müller", "payouts.csv"), "Müller");
    }

    #[test]
    fn money_is_numeric_only_when_it_reads_back_exactly() {
        assert_eq!(exact_money("-3.10", 2), Some(-3.1));
        assert_eq!(exact_money("212075", 0), Some(212075.0));
        assert_eq!(exact_money("562.086", 3), Some(562.086));
        assert_eq!(exact_money("0.00", 2), Some(0.0));
        // More digits than a double holds: kept as text, never rounded.
        assert_eq!(exact_money("9223372036854775.81", 2), None);
        assert_eq!(exact_money("'=1+1", 2), None);
        assert_eq!(exact_integer("42"), Some(42.0));
        assert_eq!(exact_integer(""), None);
    }

    #[test]
    fn wide_characters_count_twice() {
        assert_eq!(display_width("Müller"), 6);
        assert_eq!(display_width("서울"), 4);
    }
}
