//! The master-data snapshot (every input file but `revenue/`), read afresh on every run.
//! Any bad row fails the whole load, naming file, line and column, before anything is written.
//!
//! Identifiers and codes (ids, kinds, statuses, dates, currencies, countries, booleans, roles,
//! emails, competency codes) are trimmed of surrounding spaces; text shown to people (partner
//! and user names) is kept exactly as given. A header naming a column twice, a NUL byte in any
//! field, or an email address that cannot be sent to fails the load. Rows about partners that
//! are not in `partners.csv` are warnings, not errors: they are listed with the run.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::lines::line_of_offset;
use super::programs::{Programs, ProgramsError};
pub use crate::domain::master::{FxRates, InputFile, MasterData};
use crate::domain::money::{Currency, Rate};
use crate::domain::partner::*;
use crate::domain::period::Period;

mod table;

use table::{
    boolean, code, country, known_partner, optional_date, partner_id, read_file, read_table,
};

#[derive(Debug, thiserror::Error)]
pub enum MasterDataError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: required file is missing")]
    MissingFile { file: String },
    #[error("{file}: line {line}: not valid UTF-8")]
    NotUtf8 { file: String, line: u64 },
    #[error("{file}: line 1: missing required column `{column}`")]
    MissingColumn { file: String, column: &'static str },
    #[error("{file}: line 1: column `{column}` appears more than once: the header is ambiguous")]
    DuplicateColumn { file: String, column: &'static str },
    #[error("{file}: line {line}: column `{column}`: contains a NUL byte")]
    NulByte {
        file: String,
        line: u64,
        column: String,
    },
    #[error("{file}: line {line}: column `{column}`: {problem}")]
    InvalidField {
        file: String,
        line: u64,
        column: &'static str,
        problem: String,
    },
    #[error("{file}: line {line}: {problem}")]
    Malformed {
        file: String,
        line: u64,
        problem: String,
    },
    /// The cause is in the message, not also chained as a source (it would print twice).
    #[error("programs.toml: {0}")]
    Programs(ProgramsError),
}

impl From<ProgramsError> for MasterDataError {
    fn from(error: ProgramsError) -> Self {
        MasterDataError::Programs(error)
    }
}

impl MasterData {
    /// Reads the snapshot in `data_dir`. `partners.csv` and `programs.toml` must exist; a
    /// missing agreements, competencies, profiles, users or FX file reads as empty.
    pub fn load(data_dir: &Path) -> Result<Self, MasterDataError> {
        let mut master = MasterData::default();

        let programs_path = data_dir.join("programs.toml");
        let programs_bytes =
            read_file(&programs_path, "programs.toml", true, &mut master.warnings)?
                .unwrap_or_default();
        let programs_text =
            std::str::from_utf8(&programs_bytes).map_err(|e| MasterDataError::NotUtf8 {
                file: "programs.toml".into(),
                line: line_of_offset(&programs_bytes, e.valid_up_to()),
            })?;
        master.programs = Programs::parse(programs_text)?;
        master.files.push(InputFile {
            name: "programs.toml".into(),
            sha256: sha256_hex(&programs_bytes),
        });

        let all = &mut master.partners;
        let warnings = &mut master.warnings;
        master.files.extend(read_table(
            data_dir,
            "partners.csv",
            true,
            warnings,
            &[
                "partner_id",
                "name",
                "partner_type",
                "country",
                "payout_currency",
                "admin_email",
                "enrolled_on",
                "legacy_portal",
            ],
            |row, _| {
                let partner = Partner {
                    partner_id: row.parse("partner_id", partner_id, "digits")?,
                    name: row.given("name").to_owned(),
                    partner_type: row.parse(
                        "partner_type",
                        PartnerType::parse,
                        "`direct` or `indirect_provider`",
                    )?,
                    country: row.parse("country", country, "an ISO 3166-1 alpha-2 code")?,
                    payout_currency: row.parse(
                        "payout_currency",
                        Currency::parse,
                        "an ISO 4217 currency code",
                    )?,
                    admin_email: row.email("admin_email")?,
                    enrolled_on: row.parse(
                        "enrolled_on",
                        optional_date,
                        "a date YYYY-MM-DD or empty",
                    )?,
                    legacy_portal: row.parse("legacy_portal", boolean, "`true` or `false`")?,
                };
                if let Err(e) = partner.payout_currency.minor_units() {
                    return Err(row.invalid("payout_currency", e.to_string()));
                }
                if all.contains_key(&partner.partner_id) {
                    return Err(row.invalid(
                        "partner_id",
                        format!("partner `{}` is listed twice", partner.partner_id),
                    ));
                }
                all.insert(partner.partner_id.clone(), partner);
                Ok(())
            },
        )?);

        let partners = &master.partners;
        let agreements = &mut master.agreements;
        master.files.extend(read_table(
            data_dir,
            "agreements.csv",
            false,
            warnings,
            &["partner_id", "kind", "status", "valid_from", "valid_to"],
            |row, warnings| {
                let agreement = Agreement {
                    kind: row.parse(
                        "kind",
                        AgreementKind::parse,
                        "`mpn`, `cloud_distributor` or `reseller`",
                    )?,
                    status: row.parse(
                        "status",
                        AgreementStatus::parse,
                        "`active` or `terminated`",
                    )?,
                    validity: row.validity()?,
                };
                agreements
                    .entry(known_partner(row, partners, warnings)?)
                    .or_default()
                    .push(agreement);
                Ok(())
            },
        )?);

        let competencies = &mut master.competencies;
        master.files.extend(read_table(
            data_dir,
            "competencies.csv",
            false,
            warnings,
            &["partner_id", "competency", "valid_from", "valid_to"],
            |row, warnings| {
                let competency = Competency {
                    competency: row.parse("competency", code, "a competency code")?,
                    validity: row.validity()?,
                };
                competencies
                    .entry(known_partner(row, partners, warnings)?)
                    .or_default()
                    .push(competency);
                Ok(())
            },
        )?);

        let profiles = &mut master.profiles;
        master.files.extend(read_table(
            data_dir,
            "profiles.csv",
            false,
            warnings,
            &["partner_id", "tax_profile", "payment_profile"],
            |row, warnings| {
                let profile = Profile {
                    tax: row.parse(
                        "tax_profile",
                        TaxProfile::parse,
                        "`complete`, `incomplete` or `missing`",
                    )?,
                    payment: row.parse(
                        "payment_profile",
                        PaymentProfile::parse,
                        "`validated`, `pending` or `missing`",
                    )?,
                };
                let id = known_partner(row, partners, warnings)?;
                if profiles.insert(id.clone(), profile).is_some() {
                    return Err(
                        row.invalid("partner_id", format!("partner `{id}` has two profile rows"))
                    );
                }
                Ok(())
            },
        )?);

        let users = &mut master.users;
        master.files.extend(read_table(
            data_dir,
            "users.csv",
            false,
            warnings,
            &["partner_id", "email", "name", "role", "active"],
            |row, warnings| {
                let user = User {
                    email: row.email("email")?,
                    name: row.given("name").to_owned(),
                    role: row.parse(
                        "role",
                        UserRole::parse,
                        "`incentive_admin`, `incentive_user` or `account_admin`",
                    )?,
                    active: row.parse("active", boolean, "`true` or `false`")?,
                };
                users
                    .entry(known_partner(row, partners, warnings)?)
                    .or_default()
                    .push(user);
                Ok(())
            },
        )?);

        let fx = &mut master.fx.rates;
        master.files.extend(read_table(
            data_dir,
            "fx_rates.csv",
            false,
            warnings,
            &["period", "from_currency", "to_currency", "rate"],
            |row, _| {
                let period =
                    row.parse("period", |t| t.parse::<Period>().ok(), "a period YYYY-MM")?;
                let from = row.parse(
                    "from_currency",
                    Currency::parse,
                    "an ISO 4217 currency code",
                )?;
                let to = row.parse("to_currency", Currency::parse, "an ISO 4217 currency code")?;
                let rate = Rate::parse(row.text("rate"))
                    .ok()
                    .filter(|r| r.scaled > 0)
                    .ok_or_else(|| {
                        row.invalid(
                            "rate",
                            format!(
                                "`{}` is not a positive decimal with at most 10 places",
                                row.text("rate")
                            ),
                        )
                    })?;
                if fx.insert((period, from, to), rate).is_some() {
                    return Err(
                        row.invalid("rate", format!("a second rate for {period} {from}->{to}"))
                    );
                }
                Ok(())
            },
        )?);
        Ok(master)
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
