//! `programs.toml`: programs, their effective-dated rate tables and payout thresholds.
//!
//! Read strictly, because a typo here moves money: every table refuses keys it does not know
//! (`required_competency`, `[[program.rate]]`, `enabled`, `max_payout` are errors, not no-ops),
//! every value is checked (no negative rate or threshold, no rate above 1 without the program's
//! explicit `allow_rates_above_one = true`, no empty id or name, no two programs with one id),
//! and each error names the program, the key and the line. Nothing here guesses a default for
//! money.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use rust_decimal::Decimal;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::lines::LineCounter;
use crate::domain::money::{Currency, RATE_SCALE, Rate, parse_scaled};
use crate::domain::partner::PartnerType;
use crate::domain::period::Period;

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

#[derive(Debug, Clone)]
pub struct RateTable {
    pub from: Period,
    pub rates: HashMap<String, Rate>,
}

#[derive(Debug, Clone)]
pub struct Program {
    pub id: String,
    pub name: String,
    pub partner_type: PartnerType,
    pub required_competencies: Vec<String>,
    pub min_payout: BTreeMap<Currency, Decimal>,
    /// Sorted by `from`, no two with the same `from`.
    pub rate_tables: Vec<RateTable>,
}

impl Program {
    /// The rate for `category` in the table in force for `billing_month`: the one with the
    /// latest `from <= billing_month`. Tables do not inherit (SPEC §7.9).
    pub fn rate(&self, category: &str, billing_month: Period) -> Option<&Rate> {
        let index = self
            .rate_tables
            .partition_point(|t| t.from <= billing_month);
        let table = self.rate_tables.get(index.checked_sub(1)?)?;
        table.rates.get(category)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Programs {
    pub by_type: HashMap<PartnerType, Program>,
}

impl Programs {
    pub fn for_type(&self, partner_type: PartnerType) -> Option<&Program> {
        self.by_type.get(&partner_type)
    }

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

type Entry<'t, 'i> = (
    &'t Spanned<std::borrow::Cow<'i, str>>,
    &'t Spanned<DeValue<'i>>,
);

/// A table's entries in the order they are written (errors then name the first bad key).
fn entries<'t, 'i>(table: &'t DeTable<'i>) -> Vec<Entry<'t, 'i>> {
    let mut entries: Vec<Entry<'t, 'i>> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

/// What a value is, for an error message.
fn describe(value: &DeValue) -> String {
    match value {
        DeValue::String(text) => format!("the string {text:?}"),
        DeValue::Integer(number) => format!("the integer `{}`", number.as_str()),
        DeValue::Float(number) => format!("the float `{}`", number.as_str()),
        DeValue::Boolean(flag) => format!("the boolean `{flag}`"),
        DeValue::Datetime(time) => format!("the date-time `{time}`"),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

/// A product category as a rate-table key: 1 to `MAX_CATEGORY_LEN` ASCII letters, digits,
/// `-`, `_` or `.`, beginning with a letter or digit, and not a program key (a program key in
/// a rate table is a misplaced line, not a category).
fn is_category(key: &str) -> bool {
    let bytes = key.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_CATEGORY_LEN
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !PROGRAM_KEYS.contains(&key)
}

/// The text of `programs.toml`, for line numbers of spans.
struct File<'a> {
    text: &'a str,
}

impl File<'_> {
    fn line(&self, span: Range<usize>) -> u64 {
        LineCounter::new(self.text.as_bytes()).line_at(span.start)
    }

    fn unknown_key(
        &self,
        place: &str,
        key: &str,
        spanned: &Spanned<std::borrow::Cow<str>>,
    ) -> ProgramsError {
        ProgramsError::UnknownKey {
            place: place.to_owned(),
            key: key.to_owned(),
            line: self.line(spanned.span()),
        }
    }

    fn invalid(
        &self,
        place: &str,
        key: &str,
        problem: impl Into<String>,
        span: Range<usize>,
    ) -> ProgramsError {
        ProgramsError::InvalidValue {
            place: place.to_owned(),
            key: key.to_owned(),
            problem: problem.into(),
            line: self.line(span),
        }
    }

    /// A string value, without NUL characters.
    fn string<'v>(
        &self,
        place: &str,
        key: &str,
        value: &'v Spanned<DeValue>,
    ) -> Result<&'v str, ProgramsError> {
        match value.get_ref() {
            DeValue::String(text) if text.contains('\0') => {
                Err(self.invalid(place, key, "contains a NUL character", value.span()))
            }
            DeValue::String(text) => Ok(text.as_ref()),
            other => Err(self.invalid(
                place,
                key,
                format!("must be a string, found {}", describe(other)),
                value.span(),
            )),
        }
    }

    /// An identifier or code: a non-empty string without surrounding spaces.
    fn code<'v>(
        &self,
        place: &str,
        key: &str,
        value: &'v Spanned<DeValue>,
    ) -> Result<&'v str, ProgramsError> {
        let text = self.string(place, key, value)?;
        if text.is_empty() {
            return Err(self.invalid(place, key, "must not be empty", value.span()));
        }
        if text.trim() != text {
            return Err(self.invalid(
                place,
                key,
                format!("{text:?} must not begin or end with spaces"),
                value.span(),
            ));
        }
        Ok(text)
    }

    /// Money and rates are quoted decimal strings: a TOML float has already been rounded.
    fn decimal<'v>(
        &self,
        place: &str,
        key: &str,
        value: &'v Spanned<DeValue>,
    ) -> Result<&'v str, ProgramsError> {
        match value.get_ref() {
            DeValue::String(_) => self.string(place, key, value),
            other => Err(self.invalid(
                place,
                key,
                format!(
                    "must be a quoted decimal string such as \"0.05\", found {}",
                    describe(other)
                ),
                value.span(),
            )),
        }
    }

    /// The tables of an array of tables (`[[key]]`); absent reads as none.
    fn array_of_tables<'t, 'i>(
        &self,
        place: &str,
        key: &str,
        value: Option<&'t Spanned<DeValue<'i>>>,
    ) -> Result<Vec<(usize, Spanned<&'t DeTable<'i>>)>, ProgramsError> {
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        let written = if place.is_empty() {
            format!("[[{key}]]")
        } else {
            format!("[[program.{key}]]")
        };
        let not_tables = || {
            self.invalid(
                place,
                key,
                format!("must be an array of tables, written `{written}`"),
                value.span(),
            )
        };
        let DeValue::Array(items) = value.get_ref() else {
            return Err(not_tables());
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| match item.get_ref() {
                DeValue::Table(table) => Ok((index, Spanned::new(item.span(), table))),
                _ => Err(not_tables()),
            })
            .collect()
    }

    /// One `[[program]]` table; `number` is its 1-based position, for errors before its id.
    fn program(
        &self,
        number: usize,
        table: &DeTable,
        span: Range<usize>,
    ) -> Result<Program, ProgramsError> {
        let entries = entries(table);
        let id_value = entries
            .iter()
            .find(|(key, _)| key.get_ref() == "id")
            .map(|(_, value)| *value);
        let mut place = format!("program #{number}: ");
        let id = match id_value {
            Some(value) => self.code(&place, "id", value)?.to_owned(),
            None => return Err(self.missing(&place, "id", span)),
        };
        place = format!("program `{id}`: ");
        let (mut name, mut partner_type, mut allow_above_one) = (None, None, false);
        let (mut competencies, mut min_payout, mut rates) = (Vec::new(), BTreeMap::new(), None);
        for (key, value) in &entries {
            match key.get_ref().as_ref() {
                "id" => {}
                "name" => {
                    // Shown to people: kept as given, but there must be something to show.
                    let text = self.string(&place, "name", value)?;
                    if text.trim().is_empty() {
                        return Err(self.invalid(
                            &place,
                            "name",
                            "must not be empty",
                            value.span(),
                        ));
                    }
                    name = Some(text.to_owned());
                }
                "partner_type" => {
                    let text = self.code(&place, "partner_type", value)?;
                    partner_type = Some(PartnerType::parse(text).ok_or_else(|| {
                        self.invalid(
                            &place,
                            "partner_type",
                            format!("`{text}` is not one of {:?}", PartnerType::TEXTS),
                            value.span(),
                        )
                    })?);
                }
                "required_competencies" => competencies = self.competencies(&place, value)?,
                "min_payout" => min_payout = self.min_payout(&place, value)?,
                "rates" => rates = Some(*value),
                ALLOW_RATES_ABOVE_ONE => match value.get_ref() {
                    DeValue::Boolean(flag) => allow_above_one = *flag,
                    other => {
                        return Err(self.invalid(
                            &place,
                            ALLOW_RATES_ABOVE_ONE,
                            format!("must be `true` or `false`, found {}", describe(other)),
                            value.span(),
                        ));
                    }
                },
                other => return Err(self.unknown_key(&place, other, key)),
            }
        }
        let name = name.ok_or_else(|| self.missing(&place, "name", span.clone()))?;
        let partner_type =
            partner_type.ok_or_else(|| self.missing(&place, "partner_type", span.clone()))?;
        let mut rate_tables = Vec::new();
        for (index, table) in self.array_of_tables(&place, "rates", rates)? {
            rate_tables.push(self.rate_table(&place, index + 1, &table, allow_above_one)?);
        }
        rate_tables.sort_by_key(|(table, _)| table.from);
        if let Some(pair) = rate_tables.windows(2).find(|w| w[0].0.from == w[1].0.from) {
            return Err(ProgramsError::DuplicateRateTable {
                place,
                from: pair[1].0.from,
                line: self.line(pair[1].1.clone()),
            });
        }
        Ok(Program {
            id,
            name,
            partner_type,
            required_competencies: competencies,
            min_payout,
            rate_tables: rate_tables.into_iter().map(|(table, _)| table).collect(),
        })
    }

    fn missing(&self, place: &str, key: &'static str, span: Range<usize>) -> ProgramsError {
        ProgramsError::MissingKey {
            place: place.to_owned(),
            key,
            line: self.line(span),
        }
    }

    fn competencies(
        &self,
        place: &str,
        value: &Spanned<DeValue>,
    ) -> Result<Vec<String>, ProgramsError> {
        let key = "required_competencies";
        let DeValue::Array(items) = value.get_ref() else {
            return Err(self.invalid(
                place,
                key,
                format!(
                    "must be an array of competency codes, found {}",
                    describe(value.get_ref())
                ),
                value.span(),
            ));
        };
        items
            .iter()
            .map(|item| self.code(place, key, item).map(str::to_owned))
            .collect()
    }

    fn min_payout(
        &self,
        place: &str,
        value: &Spanned<DeValue>,
    ) -> Result<BTreeMap<Currency, Decimal>, ProgramsError> {
        let DeValue::Table(table) = value.get_ref() else {
            return Err(self.invalid(
                place,
                "min_payout",
                format!(
                    "must be a table of currency = \"amount\", found {}",
                    describe(value.get_ref())
                ),
                value.span(),
            ));
        };
        let mut min_payout = BTreeMap::new();
        for (code, amount) in entries(table) {
            let key = format!("min_payout.{}", code.get_ref());
            let currency = Currency::parse(code.get_ref()).ok_or_else(|| {
                self.invalid(place, &key, "is not an ISO 4217 currency", code.span())
            })?;
            let minor = currency
                .minor_units()
                .map_err(|e| self.invalid(place, &key, e.to_string(), code.span()))?;
            let text = self.decimal(place, &key, amount)?;
            if text.starts_with('-') {
                return Err(self.invalid(
                    place,
                    &key,
                    format!("`{text}` is negative: a payout threshold is never negative"),
                    amount.span(),
                ));
            }
            let scaled = parse_scaled(text, minor, minor)
                .map_err(|e| self.invalid(place, &key, format!("`{text}`: {e}"), amount.span()))?;
            let threshold = Decimal::try_from_i128_with_scale(scaled, minor)
                .map_err(|e| self.invalid(place, &key, format!("`{text}`: {e}"), amount.span()))?;
            min_payout.insert(currency, threshold);
        }
        Ok(min_payout)
    }

    /// One `[[program.rates]]` table, with where it starts (for errors).
    fn rate_table(
        &self,
        program_place: &str,
        number: usize,
        table: &Spanned<&DeTable>,
        allow_above_one: bool,
    ) -> Result<(RateTable, Range<usize>), ProgramsError> {
        let entries = entries(table.get_ref());
        let numbered = format!("{program_place}rate table #{number}: ");
        let from_value = entries
            .iter()
            .find(|(key, _)| key.get_ref() == FROM_KEY)
            .map(|(_, value)| *value)
            .ok_or_else(|| self.missing(&numbered, FROM_KEY, table.span()))?;
        let from_text = self.code(&numbered, FROM_KEY, from_value)?;
        let from: Period = from_text.parse().map_err(|_| {
            self.invalid(
                &numbered,
                FROM_KEY,
                format!("`{from_text}` is not a period \"YYYY-MM\""),
                from_value.span(),
            )
        })?;
        let place = format!("{program_place}rates from {from}: ");
        let mut rates = HashMap::new();
        for (key, value) in entries {
            let category = key.get_ref().as_ref();
            if category == FROM_KEY {
                continue;
            }
            if !is_category(category) {
                return Err(self.invalid(
                    &place,
                    category,
                    format!(
                        "is not a product category (1 to {MAX_CATEGORY_LEN} ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit, and not a program key)"
                    ),
                    key.span(),
                ));
            }
            let text = self.decimal(&place, category, value)?;
            let rate = Rate::parse(text).map_err(|e| {
                self.invalid(&place, category, format!("`{text}`: {e}"), value.span())
            })?;
            if text.starts_with('-') {
                return Err(self.invalid(
                    &place,
                    category,
                    format!("`{text}` is negative: a rate is never negative"),
                    value.span(),
                ));
            }
            if rate.scaled > 10i128.pow(RATE_SCALE) && !allow_above_one {
                return Err(self.invalid(
                    &place,
                    category,
                    format!(
                        "`{text}` is above 1 (more than the revenue); set `{ALLOW_RATES_ABOVE_ONE} = true` in the program if that is intended"
                    ),
                    value.span(),
                ));
            }
            rates.insert(category.to_owned(), rate);
        }
        Ok((RateTable { from, rates }, table.span()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[[program]]
id = "csp-indirect"
name = "CSP Indirect Provider Incentive"
partner_type = "indirect_provider"
required_competencies = ["cloud-platform-gold"]
min_payout = { USD = "50.00", JPY = "5000" }

[[program.rates]]
from = "2026-01"
azure = "0.05"
m365 = "0.08"

[[program.rates]]
from = "2026-07"
azure = "0.06"
"#;

    fn refused(text: &str) -> String {
        Programs::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn rate_tables_apply_from_their_month_and_do_not_inherit() {
        let programs = Programs::parse(TOML).unwrap();
        let program = programs.for_type(PartnerType::IndirectProvider).unwrap();
        let month = |s: &str| s.parse::<Period>().unwrap();
        assert!(program.rate("azure", month("2025-12")).is_none());
        assert_eq!(
            program.rate("azure", month("2026-06")).unwrap().text,
            "0.05"
        );
        assert_eq!(
            program.rate("azure", month("2026-07")).unwrap().text,
            "0.06"
        );
        assert_eq!(program.rate("m365", month("2026-06")).unwrap().text, "0.08");
        assert!(
            program.rate("m365", month("2026-07")).is_none(),
            "tables do not inherit (SPEC §7.9)"
        );
        assert_eq!(
            program.min_payout[&Currency::parse("JPY").unwrap()].to_string(),
            "5000"
        );
    }

    #[test]
    fn float_rates_are_refused() {
        let err = refused(&TOML.replace("\"0.06\"", "0.06"));
        assert!(err.contains("quoted decimal string"), "{err}");
    }

    #[test]
    fn unknown_program_keys_are_refused_with_program_key_and_line() {
        let typo = TOML.replace("required_competencies", "required_competency");
        assert_eq!(
            refused(&typo),
            "program `csp-indirect`: unknown key `required_competency` (line 6)"
        );
        for (line, extra) in [
            ("enabled = false", "enabled"),
            ("max_payout = { USD = \"9\" }", "max_payout"),
        ] {
            let text = TOML.replace("min_payout", &format!("{line}\nmin_payout"));
            assert_eq!(
                refused(&text),
                format!("program `csp-indirect`: unknown key `{extra}` (line 7)")
            );
        }
    }

    #[test]
    fn a_singular_rate_table_is_an_unknown_key_not_an_empty_program() {
        let text = TOML.replace("[[program.rates]]", "[[program.rate]]");
        let err = refused(&text);
        assert!(
            err.starts_with("program `csp-indirect`: unknown key `rate` (line "),
            "{err}"
        );
    }

    #[test]
    fn unknown_top_level_keys_are_refused() {
        let err = refused(&format!("version = 2\n{TOML}"));
        assert_eq!(err, "unknown key `version` (line 1)");
        let err = refused("[program]\nid = \"x\"\n");
        assert!(
            err.contains("`program` must be an array of tables, written `[[program]]`"),
            "{err}"
        );
        let single = "[[program]]\nid = \"a\"\nname = \"A\"\npartner_type = \"direct\"\n[program.rates]\nfrom = \"2026-01\"\n";
        let err = refused(single);
        assert_eq!(
            err,
            "program `a`: `rates` must be an array of tables, written `[[program.rates]]` (line 5)"
        );
    }

    #[test]
    fn rate_table_keys_must_be_categories_with_string_values() {
        for (key, value, problem) in [
            ("\"Azure Plan\"", "\"0.05\"", "is not a product category"),
            ("\"\"", "\"0.05\"", "is not a product category"),
            ("min_payout", "\"0.05\"", "is not a product category"),
            ("security", "true", "must be a quoted decimal string"),
            (
                "security",
                "{ x = \"1\" }",
                "must be a quoted decimal string",
            ),
            ("form", "\"2026-01\"", "not a plain decimal"),
        ] {
            let text = TOML.replace("m365 = \"0.08\"", &format!("{key} = {value}"));
            let err = refused(&text);
            assert!(
                err.starts_with("program `csp-indirect`: rates from 2026-01: `")
                    && err.contains(problem)
                    && err.ends_with("(line 12)"),
                "{key} = {value}: {err}"
            );
        }
    }

    #[test]
    fn negative_rates_are_refused_always() {
        for rate in ["-0.05", "-0"] {
            let err = refused(&TOML.replace("\"0.08\"", &format!("\"{rate}\"")));
            assert!(err.contains("a rate is never negative"), "{err}");
            let opted_in = TOML
                .replace("\"0.08\"", &format!("\"{rate}\""))
                .replace("min_payout", "allow_rates_above_one = true\nmin_payout");
            assert!(refused(&opted_in).contains("a rate is never negative"));
        }
    }

    #[test]
    fn rates_above_one_need_the_programs_opt_in() {
        let above = TOML.replace("\"0.08\"", "\"1.5\"");
        let err = refused(&above);
        assert!(
            err.contains("`m365` `1.5` is above 1") && err.contains("allow_rates_above_one = true"),
            "{err}"
        );
        assert!(Programs::parse(&TOML.replace("\"0.08\"", "\"1\"")).is_ok());
        let opted_in = above.replace("min_payout", "allow_rates_above_one = true\nmin_payout");
        let programs = Programs::parse(&opted_in).unwrap();
        let program = programs.for_type(PartnerType::IndirectProvider).unwrap();
        assert_eq!(
            program
                .rate("m365", "2026-01".parse().unwrap())
                .unwrap()
                .text,
            "1.5"
        );
        let not_a_flag = above.replace("min_payout", "allow_rates_above_one = \"yes\"\nmin_payout");
        assert!(refused(&not_a_flag).contains("must be `true` or `false`"));
    }

    #[test]
    fn negative_and_malformed_thresholds_are_refused() {
        let err = refused(&TOML.replace("\"50.00\"", "\"-50.00\""));
        assert_eq!(
            err,
            "program `csp-indirect`: `min_payout.USD` `-50.00` is negative: a payout threshold is never negative (line 7)"
        );
        assert!(refused(&TOML.replace("\"5000\"", "5000")).contains("quoted decimal string"));
        assert!(
            refused(&TOML.replace("\"5000\"", "\"5000.5\"")).contains("more than 0 decimal places")
        );
        assert!(
            refused(&TOML.replace("JPY", "XAU"))
                .contains("`min_payout.XAU` XAU has no minor units")
        );
        assert!(refused(&TOML.replace("JPY", "XXX")).contains("is not an ISO 4217 currency"));
    }

    #[test]
    fn ids_and_names_must_be_present_and_unique() {
        assert_eq!(
            refused(&TOML.replace("id = \"csp-indirect\"", "id = \"\"")),
            "program #1: `id` must not be empty (line 3)"
        );
        assert_eq!(
            refused(&TOML.replace("id = \"csp-indirect\"\n", "")),
            "program #1: missing key `id` (line 2)"
        );
        assert_eq!(
            refused(&TOML.replace("\"CSP Indirect Provider Incentive\"", "\"  \"")),
            "program `csp-indirect`: `name` must not be empty (line 4)"
        );
        let second =
            "\n[[program]]\nid = \"csp-indirect\"\nname = \"Other\"\npartner_type = \"direct\"\n";
        assert_eq!(
            refused(&format!("{TOML}{second}")),
            "two programs have the id `csp-indirect` (lines 2 and 18)"
        );
        let shared = "\n[[program]]\nid = \"other\"\nname = \"Other\"\npartner_type = \"indirect_provider\"\n";
        assert!(
            refused(&format!("{TOML}{shared}"))
                .contains("both have partner_type `indirect_provider`")
        );
    }

    #[test]
    fn names_are_kept_as_given_and_codes_must_be_clean() {
        let spaced = TOML.replace("\"CSP Indirect Provider Incentive\"", "\" CSP \"");
        let programs = Programs::parse(&spaced).unwrap();
        assert_eq!(
            programs
                .for_type(PartnerType::IndirectProvider)
                .unwrap()
                .name,
            " CSP "
        );
        assert!(
            refused(&TOML.replace("\"cloud-platform-gold\"", "\" cloud-platform-gold\""))
                .contains("must not begin or end with spaces")
        );
        assert!(
            refused(&TOML.replace("\"cloud-platform-gold\"", "\"\""))
                .contains("`required_competencies` must not be empty")
        );
        assert!(refused(&TOML.replace("\"cloud-platform-gold\"", "\"a\\u0000b\"")).contains("NUL"));
        assert!(
            refused(&TOML.replace("[\"cloud-platform-gold\"]", "\"cloud-platform-gold\""))
                .contains("must be an array")
        );
    }

    #[test]
    fn duplicate_rate_tables_and_bad_periods_are_refused() {
        let err = refused(&TOML.replace("2026-07", "2026-01"));
        assert!(err.contains("two rate tables start at 2026-01"), "{err}");
        let err = refused(&TOML.replace("\"2026-07\"", "\"July\""));
        assert_eq!(
            err,
            "program `csp-indirect`: rate table #2: `from` `July` is not a period \"YYYY-MM\" (line 15)"
        );
        let err = refused(&TOML.replace("from = \"2026-07\"\n", ""));
        assert!(err.contains("rate table #2: missing key `from`"), "{err}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = refused("[[program]]\nid = \"x\n");
        assert!(err.starts_with("line 2: not valid TOML"), "{err}");
    }
}
