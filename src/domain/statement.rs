//! A payment statement as a close records it (SPEC §3): the figures already in minor units, as
//! text, and its summarised lines. `notify::statement` builds and renders it; the store keeps it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::reasons::PayoutStatus;
use super::revenue::Booking;

/// Who issues statements and pays (the `[issuer]` table of `payout.toml`), frozen into each
/// statement at close so that it renders the same later.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    /// The payer's name; the language's "Partner Incentives Finance" when empty.
    #[serde(default)]
    pub name: String,
    /// Postal address; `\n` separates its lines.
    #[serde(default)]
    pub address: String,
    /// Where partners write about their statements.
    #[serde(default)]
    pub email: String,
    /// When and how payment is made; the language's default sentence when empty.
    #[serde(default)]
    pub payment_terms: String,
    /// The payment sentence of statements in one language, by language code
    /// (`[issuer.payment_terms_by_language]`: `ko = "…"`); `payment_terms` for the others. A
    /// code that is not a statement language is refused, not ignored.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "by_statement_language"
    )]
    pub payment_terms_by_language: BTreeMap<String, String>,
}

/// The codes of the languages statements are written in (`notify::templates::Language`, which a
/// test keeps equal to this list).
pub const STATEMENT_LANGUAGES: &[&str] = &["en", "ko", "ja", "de"];

impl Issuer {
    /// The payment sentence configured for statements in `language`, if any: its own, else
    /// `payment_terms` (an entry left empty falls back too).
    pub fn payment_terms_in(&self, language: &str) -> Option<&str> {
        [
            self.payment_terms_by_language.get(language),
            Some(&self.payment_terms),
        ]
        .into_iter()
        .flatten()
        .map(|sentence| sentence.trim())
        .find(|sentence| !sentence.is_empty())
    }
}

fn by_statement_language<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let map = <BTreeMap<String, String> as serde::Deserialize>::deserialize(deserializer)?;
    match map
        .keys()
        .find(|code| !STATEMENT_LANGUAGES.contains(&code.as_str()))
    {
        Some(code) => Err(serde::de::Error::custom(format!(
            "payment_terms_by_language: `{code}` is not a statement language ({})",
            STATEMENT_LANGUAGES.join(", ")
        ))),
        None => Ok(map),
    }
}

/// One summarised line of a statement, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementLineRecord {
    pub booking: String,
    pub product_category: String,
    pub line_currency: String,
    pub rate: Option<String>,
    pub lines: i64,
    pub revenue: String,
    pub earning: String,
    /// The billing month (`YYYY-MM`) of the row's lines: the period for its own lines, the
    /// earlier month for late ones. `None` only for a row closed before it was recorded
    /// (migration 0013), which says nothing about months or FX.
    pub billing_month: Option<String>,
    /// The FX rate (line currency -> payout currency) applied to the row, exactly as the FX
    /// file wrote it, and the FX period it is keyed by; both set on a converted row that
    /// earns, neither elsewhere.
    pub fx_rate: Option<String>,
    pub fx_period: Option<String>,
}

/// A statement as a close records it: figures already in minor units, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementRecord {
    pub period: String,
    pub partner_id: String,
    pub partner_name: String,
    pub program_id: String,
    pub program_name: String,
    pub currency: String,
    pub language: String,
    pub earned: String,
    pub adjustments: String,
    pub released: String,
    pub carried_in: String,
    pub payable: String,
    pub carried: String,
    pub held: String,
    pub status: String,
    /// `;`-joined, sorted.
    pub hold_reasons: String,
    pub lines: Vec<StatementLineRecord>,
    /// Why the partner was not eligible for the period: `;`-joined, sorted; empty if eligible.
    pub eligibility_reasons: String,
    /// The partner's enrolment date (`YYYY-MM-DD`) when it has one; with a `NOT_ENROLLED` hold
    /// it is after the as-of date, and the statement says from when the partner is enrolled.
    pub enrolled_on: Option<String>,
    /// The close's date (`YYYY-MM-DD`, the `time_zone` setting's calendar): the issue date.
    pub issued_on: Option<String>,
    /// The issuer as configured when the period was closed.
    pub issuer: Option<Issuer>,
    /// SHA-256 (hex) of the PDF the close rendered and filed; `None` until it is rendered (and
    /// for statements closed before the PDF was filed with its hash).
    #[serde(skip)]
    pub pdf_sha256: Option<String>,
}

impl StatementLineRecord {
    /// The stored booking, typed; `None` for text that is no booking (a corrupt row).
    pub fn booking(&self) -> Option<Booking> {
        Booking::parse(&self.booking)
    }
}

impl StatementRecord {
    /// The stored status, typed; `None` for text that is no status (a corrupt row).
    pub fn payout_status(&self) -> Option<PayoutStatus> {
        PayoutStatus::from_code(&self.status)
    }
}
