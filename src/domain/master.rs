//! The master-data snapshot as the rules read it: partners, agreements, competencies, profiles,
//! users, FX rates and programs, with the files they came from. Loaded (and checked) by
//! `ingest::master`.

use std::collections::{BTreeMap, HashMap};

use super::money::{Currency, Rate};
use super::partner::*;
use super::period::Period;
use super::program::Programs;
use super::warning::Warnings;

/// One input file and the SHA-256 of its content, as recorded by every run (SPEC §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    pub name: String,
    pub sha256: String,
}

/// FX rates by (billing month, from, to). Only direct rates are ever used (SPEC §7.15).
#[derive(Debug, Clone, Default)]
pub struct FxRates {
    pub(crate) rates: HashMap<(Period, Currency, Currency), Rate>,
}

impl FxRates {
    pub fn get(&self, month: Period, from: Currency, to: Currency) -> Option<&Rate> {
        self.rates.get(&(month, from, to))
    }
}

#[derive(Debug, Clone, Default)]
pub struct MasterData {
    /// Sorted by `partner_id` as text, the order of every report.
    pub partners: BTreeMap<String, Partner>,
    pub agreements: HashMap<String, Vec<Agreement>>,
    pub competencies: HashMap<String, Vec<Competency>>,
    pub profiles: HashMap<String, Profile>,
    pub users: HashMap<String, Vec<User>>,
    pub fx: FxRates,
    pub programs: Programs,
    pub files: Vec<InputFile>,
    /// What the load read past without using: rows of partners not in `partners.csv`, missing
    /// optional files.
    pub warnings: Warnings,
}

impl MasterData {
    pub fn profile(&self, partner_id: &str) -> Profile {
        self.profiles.get(partner_id).copied().unwrap_or_default()
    }
}
