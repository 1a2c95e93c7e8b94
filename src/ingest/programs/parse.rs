//! The strict reader of the `programs.toml` document: one `[[program]]` table and its
//! `[[program.rates]]` tables at a time, each key known, each value checked, each error with
//! the program, the key and the line. It builds `Program`s and never guesses a value.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{
    ALLOW_RATES_ABOVE_ONE, FROM_KEY, MAX_CATEGORY_LEN, PROGRAM_KEYS, Program, ProgramsError,
    RateTable,
};
use crate::domain::money::{Currency, Payable, RATE_SCALE, Rate, parse_scaled};
use crate::domain::partner::PartnerType;
use crate::domain::period::Period;
use crate::ingest::lines::LineCounter;

type Entry<'t, 'i> = (
    &'t Spanned<std::borrow::Cow<'i, str>>,
    &'t Spanned<DeValue<'i>>,
);

/// A table's entries in the order they are written (errors then name the first bad key).
pub(super) fn entries<'t, 'i>(table: &'t DeTable<'i>) -> Vec<Entry<'t, 'i>> {
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
pub(super) struct File<'a> {
    pub(super) text: &'a str,
}

impl File<'_> {
    pub(super) fn line(&self, span: Range<usize>) -> u64 {
        LineCounter::new(self.text.as_bytes()).line_at(span.start)
    }

    pub(super) fn unknown_key(
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
    pub(super) fn array_of_tables<'t, 'i>(
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
    pub(super) fn program(
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
        // `required_competencies` and `rates` are required: a deleted line must not quietly
        // drop the competency rule, or make every partner of the program earn nothing.
        let (mut competencies, mut min_payout, mut rates) = (None, BTreeMap::new(), None);
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
                "required_competencies" => competencies = Some(self.competencies(&place, value)?),
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
        let competencies = competencies
            .ok_or_else(|| self.missing(&place, "required_competencies", span.clone()))?;
        if rates.is_none() {
            return Err(self.missing(&place, "rates", span.clone()));
        }
        let mut rate_tables = Vec::new();
        for (index, table) in self.array_of_tables(&place, "rates", rates)? {
            rate_tables.push(self.rate_table(&place, index + 1, &table, allow_above_one)?);
        }
        if rate_tables.is_empty() {
            return Err(self.missing(&place, "rates", span.clone()));
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
    ) -> Result<BTreeMap<Currency, Payable>, ProgramsError> {
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
            let threshold = Payable::from_minor_units(scaled, currency)
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
