//! Payment statements (SPEC §3): the record a close stores, and the document it renders to,
//! in HTML (a template file) and PDF. The same record renders the same bytes wherever it is
//! rendered, so `close` and `send` show the partner identical statements.

use serde::Serialize;

use super::templates::{Language, Templates};
use crate::domain::money::{Currency, Money, Payable};
use crate::domain::period::Period;
use crate::domain::reasons::join_codes;
pub use crate::domain::statement::{StatementLineRecord, StatementRecord};
use crate::earnings::PartnerFigures;

impl StatementRecord {
    pub fn from_figures(
        figures: &PartnerFigures,
        period: Period,
        program_name: &str,
        language: Language,
    ) -> Self {
        let money = |amount: Payable| amount.to_string();
        let s = &figures.settlement;
        Self {
            period: period.to_string(),
            partner_id: figures.partner_id.clone(),
            partner_name: figures.partner_name.clone(),
            program_id: figures.program_id.clone(),
            program_name: program_name.to_owned(),
            currency: figures.currency.code().to_owned(),
            language: language.code().to_owned(),
            earned: money(s.earned),
            adjustments: money(s.adjustments),
            released: money(s.released),
            carried_in: money(s.carried_in),
            payable: money(s.payable),
            carried: money(s.after.carried()),
            held: money(s.after.held()),
            status: s.status.code().to_owned(),
            hold_reasons: join_codes(figures.hold_reasons.iter().map(|r| r.code())),
            lines: figures
                .categories
                .iter()
                .map(|c| StatementLineRecord {
                    booking: c.booking.as_str().to_owned(),
                    product_category: c.product_category.clone(),
                    line_currency: c.line_currency.clone(),
                    rate: c.rate.clone(),
                    lines: c.lines as i64,
                    revenue: c.revenue.clone(),
                    earning: c.earning.clone(),
                })
                .collect(),
        }
    }

    pub fn hold_codes(&self) -> impl Iterator<Item = &str> {
        self.hold_reasons.split(';').filter(|c| !c.is_empty())
    }
}

/// Groups the integer part of decimal text by thousands: `-1234567.50` -> `-1,234,567.50`.
pub fn group_thousands(text: &str) -> String {
    let (sign, unsigned) = text
        .strip_prefix('-')
        .map_or(("", text), |rest| ("-", rest));
    let (int_part, frac) = unsigned
        .split_once('.')
        .map_or((unsigned, None), |(i, f)| (i, Some(f)));
    let mut grouped = String::with_capacity(int_part.len() + int_part.len() / 3);
    for (i, ch) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// An amount as a partner reads it: grouped digits and the currency code.
pub fn display_money(minor_text: &str, currency: &str) -> String {
    format!("{} {currency}", group_thousands(minor_text))
}

#[derive(Debug, Clone, Serialize)]
pub struct LineDoc {
    pub category: String,
    pub booking_label: String,
    pub lines: i64,
    pub revenue: String,
    pub rate_label: String,
    pub earning: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HoldDoc {
    pub code: String,
    pub text: String,
    pub action: String,
}

/// A statement ready to render: every text in the partner's language, amounts formatted.
#[derive(Debug, Clone, Serialize)]
pub struct StatementDoc {
    pub language: String,
    pub partner_id: String,
    pub partner_name: String,
    pub program_id: String,
    pub program_name: String,
    pub period: String,
    pub currency: String,
    pub lines: Vec<LineDoc>,
    pub earned: String,
    pub adjustments: String,
    pub released: String,
    pub carried_in: String,
    pub payable: String,
    pub carried: String,
    pub held: String,
    pub status: String,
    pub status_text: String,
    pub holds: Vec<HoldDoc>,
}

/// A stored statement that cannot be shown: its amounts cannot be rounded for display.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "statement of partner {partner_id} for {period}: `{currency}` is not a currency with minor units"
)]
pub struct StatementCurrencyError {
    pub partner_id: String,
    pub period: String,
    pub currency: String,
}

impl StatementDoc {
    pub fn new(
        record: &StatementRecord,
        templates: &Templates,
    ) -> Result<Self, StatementCurrencyError> {
        let language = Language::from_code(&record.language);
        let label = |key: &str| templates.label(language, key);
        let currency = record.currency.as_str();
        // Never a default number of places: a wrong guess would show the partner wrong money.
        let payout_currency = Currency::parse(currency)
            .filter(|c| c.minor_units().is_ok())
            .ok_or_else(|| StatementCurrencyError {
                partner_id: record.partner_id.clone(),
                period: record.period.clone(),
                currency: record.currency.clone(),
            })?;
        let lines = record
            .lines
            .iter()
            .map(|line| LineDoc {
                category: line.product_category.clone(),
                booking_label: label(if line.booking == "adjustment" {
                    "booking_adjustment"
                } else {
                    "booking_earned"
                }),
                lines: line.lines,
                revenue: display_money(&line.revenue, &line.line_currency),
                rate_label: line.rate.clone().unwrap_or_else(|| label("no_rate")),
                earning: group_thousands(
                    &Money::round_exact_text(&line.earning, payout_currency)
                        .map_or_else(|| line.earning.clone(), |shown| shown.to_string()),
                ),
            })
            .collect();
        let money = |text: &str| display_money(text, currency);
        Ok(Self {
            language: language.code().to_owned(),
            partner_id: record.partner_id.clone(),
            partner_name: record.partner_name.clone(),
            program_id: record.program_id.clone(),
            program_name: record.program_name.clone(),
            period: record.period.clone(),
            currency: currency.to_owned(),
            lines,
            earned: money(&record.earned),
            adjustments: money(&record.adjustments),
            released: money(&record.released),
            carried_in: money(&record.carried_in),
            payable: money(&record.payable),
            carried: money(&record.carried),
            held: money(&record.held),
            status: record.status.clone(),
            status_text: templates.label(language, &format!("statuses.{}", record.status)),
            holds: record
                .hold_codes()
                .map(|code| HoldDoc {
                    code: code.to_owned(),
                    text: templates.label(language, &format!("holds.{code}.text")),
                    action: templates.label(language, &format!("holds.{code}.action")),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands("1207.74"), "1,207.74");
        assert_eq!(group_thousands("-1234567"), "-1,234,567");
        assert_eq!(group_thousands("999"), "999");
        assert_eq!(group_thousands("0.000"), "0.000");
    }
}
