//! Programs as the rules read them: rate tables effective by billing month and payout
//! thresholds per currency. Parsed from `programs.toml` by `ingest::programs`.

use std::collections::{BTreeMap, HashMap};

use super::money::{Currency, Payable, Rate};
use super::partner::PartnerType;
use super::period::Period;

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
    pub min_payout: BTreeMap<Currency, Payable>,
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
}
