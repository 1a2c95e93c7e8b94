//! Payment statements (SPEC §3): the record a close stores, and the document it renders to,
//! in HTML (a template file) and PDF. The same record renders the same bytes wherever it is
//! rendered, so `close` and `send` show the partner identical statements.

use serde::Serialize;

use super::templates::{Language, Templates};
use crate::domain::money::{Currency, Money, Payable};
use crate::domain::period::Period;
use crate::domain::reasons::{PayoutStatus, join_codes};
use crate::domain::revenue::Booking;
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
                    billing_month: Some(c.billing_month.to_string()),
                    fx_rate: c.fx.as_ref().map(|fx| fx.rate.clone()),
                    fx_period: c.fx.as_ref().map(|fx| fx.period.to_string()),
                })
                .collect(),
            eligibility_reasons: String::new(),
            enrolled_on: None,
            issued_on: None,
            issuer: None,
            pdf_sha256: None,
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

/// Exact decimal text with the trailing zeros past the currency's minor units dropped
/// (`3500000.00` KRW reads `3500000`, `12.500` USD `12.50`); digits that are not zeros stay,
/// so nothing is rounded away.
pub fn trim_to_minor(text: &str, minor_units: u32) -> String {
    let Some((int_part, fraction)) = text.split_once('.') else {
        return text.to_owned();
    };
    let keep = fraction
        .trim_end_matches('0')
        .len()
        .max(minor_units as usize)
        .min(fraction.len());
    match keep {
        0 => int_part.to_owned(),
        _ => format!("{int_part}.{}", &fraction[..keep]),
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
    /// The FX rate applied and its period (`0.9154 (2026-09)`), or `NO_FX` for a row in the
    /// payout currency or one that earns nothing; empty for a row closed before it was
    /// recorded.
    pub fx_label: String,
    pub earning: String,
}

/// What a row without an FX rate shows in the FX column.
pub const NO_FX: &str = "—";

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
    /// Stable: the same on every rendering of the statement (`<partner_id>-<period>`).
    pub statement_number: String,
    /// The close's date; empty for a statement closed before it was recorded.
    pub issued_on: String,
    pub issuer_name: String,
    /// The issuer's address, one entry per line.
    pub issuer_address: Vec<String>,
    pub issuer_email: String,
    /// When and how payment is made: the configured sentence, or the language's default.
    pub payment_terms: String,
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
    #[serde(skip)]
    pub payout_status: Option<PayoutStatus>,
    pub status_text: String,
    pub holds: Vec<HoldDoc>,
    /// Why the partner was not eligible for the period and what restores eligibility, one
    /// entry per failed rule (SPEC §3); empty when eligible.
    pub ineligible: Vec<HoldDoc>,
}

/// A stored statement that cannot be shown: its amounts cannot be rounded for display, or a
/// row's FX rate is missing where it was applied (or present where none was).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementDocError {
    #[error(
        "statement of partner {partner_id} for {period}: `{currency}` is not a currency with minor units"
    )]
    Currency {
        partner_id: String,
        period: String,
        currency: String,
    },
    #[error("statement of partner {partner_id} for {period}, row {row} ({category}): {problem}")]
    Line {
        partner_id: String,
        period: String,
        row: usize,
        category: String,
        problem: &'static str,
    },
}

/// The FX column of one stored row, checked (issue 14): a converted row that earns must carry
/// its FX rate and period, any other row must carry none; a row closed before migration 0013
/// (no billing month) recorded neither and shows nothing. Never a guessed or empty rate.
fn fx_label(
    line: &StatementLineRecord,
    payout_currency: &str,
    label: &dyn Fn(&str) -> String,
) -> Result<String, &'static str> {
    let converted = line.line_currency != payout_currency && line.rate.is_some();
    match (&line.billing_month, &line.fx_rate, &line.fx_period) {
        (None, None, None) => Ok(String::new()),
        (None, _, _) => Err("an FX rate without a billing month"),
        (Some(_), Some(rate), Some(period)) if converted => {
            if rate.trim().is_empty() || period.trim().is_empty() {
                return Err("an empty FX rate or FX period");
            }
            Ok(label("fx_rate_value")
                .replace("{rate}", rate)
                .replace("{period}", period))
        }
        (Some(_), None, None) if converted => Err("a converted row without its FX rate"),
        (Some(_), None, None) => Ok(NO_FX.to_owned()),
        (Some(_), Some(_), None) | (Some(_), None, Some(_)) => {
            Err("an FX rate without its period, or a period without its rate")
        }
        (Some(_), Some(_), Some(_)) => Err("an FX rate on a row that was not converted"),
    }
}

impl StatementDoc {
    pub fn new(record: &StatementRecord, templates: &Templates) -> Result<Self, StatementDocError> {
        let language = Language::from_code(&record.language);
        let label = |key: &str| templates.label(language, key);
        let currency = record.currency.as_str();
        // Never a default number of places: a wrong guess would show the partner wrong money.
        let payout_currency = Currency::parse(currency)
            .filter(|c| c.minor_units().is_ok())
            .ok_or_else(|| StatementDocError::Currency {
                partner_id: record.partner_id.clone(),
                period: record.period.clone(),
                currency: record.currency.clone(),
            })?;
        let eligible = record.eligibility_reasons.is_empty();
        let lines = record
            .lines
            .iter()
            .enumerate()
            .map(|(row, line)| {
                let fx_label = fx_label(line, currency, &label).map_err(|problem| {
                    StatementDocError::Line {
                        partner_id: record.partner_id.clone(),
                        period: record.period.clone(),
                        row,
                        category: line.product_category.clone(),
                        problem,
                    }
                })?;
                Ok(LineDoc {
                    category: line.product_category.clone(),
                    booking_label: match (line.booking(), &line.billing_month) {
                        // Late lines say the month they were billed in (issue 14).
                        (Some(Booking::Adjustment), Some(month)) => {
                            label("booking_adjustment_billed").replace("{month}", month)
                        }
                        (Some(Booking::Adjustment), None) => label("booking_adjustment"),
                        (Some(Booking::Earned) | None, _) => label("booking_earned"),
                    },
                    fx_label,
                    lines: line.lines,
                    revenue: display_money(
                        &Currency::parse(&line.line_currency)
                            .and_then(|c| c.minor_units().ok())
                            .map_or_else(
                                || line.revenue.clone(),
                                |minor| trim_to_minor(&line.revenue, minor),
                            ),
                        &line.line_currency,
                    ),
                    rate_label: line.rate.clone().unwrap_or_else(|| {
                        // An ineligible partner's lines earn nothing because of eligibility, not
                        // because their category has no rate.
                        label(if eligible {
                            "no_rate"
                        } else {
                            "not_eligible_rate"
                        })
                    }),
                    earning: group_thousands(
                        &Money::round_exact_text(&line.earning, payout_currency)
                            .map_or_else(|| line.earning.clone(), |shown| shown.to_string()),
                    ),
                })
            })
            .collect::<Result<Vec<_>, StatementDocError>>()?;
        let money = |text: &str| display_money(text, currency);
        let issuer = record.issuer.clone().unwrap_or_default();
        Ok(Self {
            language: language.code().to_owned(),
            statement_number: format!("{}-{}", record.partner_id, record.period),
            issued_on: record.issued_on.clone().unwrap_or_default(),
            issuer_address: issuer
                .address
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect(),
            issuer_email: issuer.email.clone(),
            payment_terms: issuer
                .payment_terms_in(language.code())
                .map_or_else(|| label("payment_terms"), str::to_owned),
            issuer_name: match issuer.name.trim() {
                "" => label("issued_by"),
                configured => configured.to_owned(),
            },
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
            payout_status: record.payout_status(),
            status_text: label(&format!("statuses.{}", status_key(record))),
            holds: record
                .hold_codes()
                .map(|code| {
                    // Enrolled after the as-of date: enrolled from that date, paid from the
                    // next period; nothing to enrol in.
                    let key = match (code, &record.enrolled_on) {
                        ("NOT_ENROLLED", Some(_)) => "ENROLLED_AFTER_AS_OF",
                        _ => code,
                    };
                    let date = record.enrolled_on.as_deref().unwrap_or_default();
                    HoldDoc {
                        code: code.to_owned(),
                        text: label(&format!("holds.{key}.text")).replace("{date}", date),
                        action: label(&format!("holds.{key}.action")).replace("{date}", date),
                    }
                })
                .collect(),
            ineligible: record
                .eligibility_reasons
                .split(';')
                .filter(|code| !code.is_empty())
                .map(|code| HoldDoc {
                    code: code.to_owned(),
                    text: label(&format!("eligibility.{code}.text")),
                    action: label(&format!("eligibility.{code}.action")),
                })
                .collect(),
        })
    }
}

/// The key of the status sentence: a negative carried balance is a debit carried forward, and
/// an ineligible partner below the threshold earned nothing because it was not eligible.
fn status_key(record: &StatementRecord) -> &str {
    let below = record.payout_status() == Some(PayoutStatus::BelowThreshold);
    // Money text never has a sign on zero (SPEC §7.12): a leading `-` is a debit.
    if below && record.carried.starts_with('-') {
        "DEBIT_CARRIED"
    } else if below && !record.eligibility_reasons.is_empty() {
        "NOT_ELIGIBLE"
    } else {
        &record.status
    }
}

#[cfg(test)]
mod tests;
