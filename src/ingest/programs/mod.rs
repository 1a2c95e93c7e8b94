//! `programs.toml`: programs, their effective-dated rate tables and payout thresholds.
//!
//! Read strictly, because a typo here moves money: every table refuses keys it does not know
//! (`required_competency`, `[[program.rate]]`, `enabled`, `max_payout` are errors, not no-ops),
//! every value is checked (no negative rate or threshold, no rate above 1 without the program's
//! explicit `allow_rates_above_one = true`, no empty id or name, no two programs with one id),
//! and each error names the program, the key and the line. Nothing here guesses a default for
//! money.

use std::collections::HashMap;
use std::ops::Range;

use toml::de::DeTable;

use crate::domain::partner::PartnerType;
use crate::domain::period::Period;
pub use crate::domain::program::{Program, Programs, RateTable};

mod parse;

use parse::{File, entries};

/// The program-level opt-in for rates above 1 (an incentive larger than the revenue).
pub const ALLOW_RATES_ABOVE_ONE: &str = "allow_rates_above_one";
/// The one key of a rate table that is not a product category.
const FROM_KEY: &str = "from";
/// Longest product category a rate table may name.
pub const MAX_CATEGORY_LEN: usize = 64;
/// The keys a `[[program]]` table may have.
const PROGRAM_KEYS: [&str; 7] = [
    "id",
    "name",
    "partner_type",
    "required_competencies",
    "min_payout",
    "rates",
    ALLOW_RATES_ABOVE_ONE,
];

/// Why `programs.toml` is refused. `place` is where in the file (empty at the top level, else
/// "program `id`: " and, inside a rate table, "rates from YYYY-MM: "); `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramsError {
    #[error("line {line}: not valid TOML: {message}")]
    Syntax { line: u64, message: String },
    #[error("{place}unknown key `{key}` (line {line})")]
    UnknownKey {
        place: String,
        key: String,
        line: u64,
    },
    #[error("{place}missing key `{key}` (line {line})")]
    MissingKey {
        place: String,
        key: &'static str,
        line: u64,
    },
    #[error("{place}`{key}` {problem} (line {line})")]
    InvalidValue {
        place: String,
        key: String,
        problem: String,
        line: u64,
    },
    #[error("two programs have the id `{id}` (lines {first_line} and {line})")]
    DuplicateId {
        id: String,
        first_line: u64,
        line: u64,
    },
    #[error(
        "programs `{first}` and `{second}` both have partner_type `{partner_type}`: each partner type belongs to at most one program (line {line})"
    )]
    SharedPartnerType {
        first: String,
        second: String,
        partner_type: &'static str,
        line: u64,
    },
    #[error("{place}two rate tables start at {from} (line {line})")]
    DuplicateRateTable {
        place: String,
        from: Period,
        line: u64,
    },
}

impl Programs {
    pub fn parse(text: &str) -> Result<Self, ProgramsError> {
        let file = File { text };
        let document = DeTable::parse(text).map_err(|e| ProgramsError::Syntax {
            line: e.span().map_or(1, |span| file.line(span)),
            message: e.message().trim().to_owned(),
        })?;
        let mut program_list = None;
        for (key, value) in entries(document.get_ref()) {
            match key.get_ref().as_ref() {
                "program" => program_list = Some(value),
                other => return Err(file.unknown_key("", other, key)),
            }
        }
        let mut by_type: HashMap<PartnerType, (Program, Range<usize>)> = HashMap::new();
        let mut ids: HashMap<String, Range<usize>> = HashMap::new();
        for (index, item) in file.array_of_tables("", "program", program_list)? {
            let program = file.program(index + 1, item.get_ref(), item.span())?;
            if let Some(first) = ids.insert(program.id.clone(), item.span()) {
                return Err(ProgramsError::DuplicateId {
                    id: program.id,
                    first_line: file.line(first),
                    line: file.line(item.span()),
                });
            }
            if let Some((other, _)) = by_type.get(&program.partner_type) {
                return Err(ProgramsError::SharedPartnerType {
                    first: other.id.clone(),
                    second: program.id,
                    partner_type: other.partner_type.as_str(),
                    line: file.line(item.span()),
                });
            }
            by_type.insert(program.partner_type, (program, item.span()));
        }
        Ok(Self {
            by_type: by_type
                .into_iter()
                .map(|(partner_type, (program, _))| (partner_type, program))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests;
