//! `programs.toml`: programs, their effective-dated rate tables and payout thresholds.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::domain::money::{Currency, Rate, parse_scaled};
use crate::domain::partner::PartnerType;
use crate::domain::period::Period;

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

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: ProgramsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_type = HashMap::new();
        for raw in file.program {
            let program = raw.into_program()?;
            let id = program.id.clone();
            if let Some(other) = by_type.insert(program.partner_type, program) {
                return Err(format!(
                    "programs `{}` and `{id}` both have partner_type `{}`: each partner type belongs to at most one program",
                    other.id,
                    other.partner_type.as_str()
                ));
            }
        }
        Ok(Self { by_type })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramsFile {
    #[serde(default)]
    program: Vec<ProgramToml>,
}

#[derive(Deserialize)]
struct ProgramToml {
    id: String,
    name: String,
    partner_type: String,
    #[serde(default)]
    required_competencies: Vec<String>,
    #[serde(default)]
    min_payout: BTreeMap<String, toml::Value>,
    #[serde(default)]
    rates: Vec<toml::Table>,
}

/// Money and rates must be quoted decimal strings: a TOML float has already been rounded.
fn decimal_text<'a>(value: &'a toml::Value, what: &str) -> Result<&'a str, String> {
    value.as_str().ok_or_else(|| {
        format!("{what} must be a quoted decimal string such as \"0.05\", found `{value}`")
    })
}

impl ProgramToml {
    fn into_program(self) -> Result<Program, String> {
        let id = self.id;
        let partner_type = PartnerType::parse(&self.partner_type).ok_or_else(|| {
            format!(
                "program `{id}`: partner_type `{}` is not one of {:?}",
                self.partner_type,
                PartnerType::TEXTS
            )
        })?;
        let mut min_payout = BTreeMap::new();
        for (code, value) in &self.min_payout {
            let currency = Currency::parse(code)
                .filter(|c| c.minor_units().is_some())
                .ok_or_else(|| {
                    format!(
                        "program `{id}`: min_payout currency `{code}` is not an ISO 4217 currency"
                    )
                })?;
            let what = format!("program `{id}`: min_payout.{code}");
            let text = decimal_text(value, &what)?;
            let minor = currency.minor_units().unwrap_or(0);
            let scaled =
                parse_scaled(text, minor, minor).map_err(|e| format!("{what} `{text}`: {e}"))?;
            let amount = Decimal::try_from_i128_with_scale(scaled, minor)
                .map_err(|e| format!("{what}: {e}"))?;
            min_payout.insert(currency, amount);
        }
        let mut rate_tables = Vec::new();
        for table in self.rates {
            let from_value = table
                .get("from")
                .ok_or_else(|| format!("program `{id}`: a rate table has no `from`"))?;
            let from: Period = from_value
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("program `{id}`: rate table `from` must be a period \"YYYY-MM\", found `{from_value}`"))?;
            let mut rates = HashMap::new();
            for (category, value) in table.iter().filter(|(k, _)| k.as_str() != "from") {
                let what = format!("program `{id}`: rates from {from}: `{category}`");
                let text = decimal_text(value, &what)?;
                let rate = Rate::parse(text).map_err(|e| format!("{what} `{text}`: {e}"))?;
                rates.insert(category.clone(), rate);
            }
            rate_tables.push(RateTable { from, rates });
        }
        rate_tables.sort_by_key(|t| t.from);
        if let Some(pair) = rate_tables.windows(2).find(|w| w[0].from == w[1].from) {
            return Err(format!(
                "program `{id}`: two rate tables start at {}",
                pair[0].from
            ));
        }
        Ok(Program {
            id,
            name: self.name,
            partner_type,
            required_competencies: self.required_competencies,
            min_payout,
            rate_tables,
        })
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
        let err = Programs::parse(&TOML.replace("\"0.06\"", "0.06")).unwrap_err();
        assert!(err.contains("quoted decimal string"), "{err}");
    }
}
