//! The master-data snapshot (every input file but `revenue/`), read afresh on every run.
//! Any bad row fails the whole load, naming file, line and column, before anything is written.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use super::programs::Programs;
use crate::domain::money::{Currency, Rate};
use crate::domain::partner::*;
use crate::domain::period::{Period, parse_date};

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
    #[error("{file}: {problem}")]
    Invalid { file: String, problem: String },
}

/// One input file and the SHA-256 of its content, as recorded by every run (SPEC §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    pub name: String,
    pub sha256: String,
}

/// FX rates by (billing month, from, to). Only direct rates are ever used (SPEC §7.15).
#[derive(Debug, Clone, Default)]
pub struct FxRates {
    rates: HashMap<(Period, Currency, Currency), Rate>,
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
}

impl MasterData {
    pub fn profile(&self, partner_id: &str) -> Profile {
        self.profiles.get(partner_id).copied().unwrap_or_default()
    }

    /// Reads the snapshot in `data_dir`. `partners.csv` and `programs.toml` must exist; a
    /// missing agreements, competencies, profiles, users or FX file reads as empty.
    pub fn load(data_dir: &Path) -> Result<Self, MasterDataError> {
        let mut master = MasterData::default();

        let programs_path = data_dir.join("programs.toml");
        let programs_bytes = read_file(&programs_path, "programs.toml", true)?.unwrap_or_default();
        let programs_text =
            std::str::from_utf8(&programs_bytes).map_err(|e| MasterDataError::NotUtf8 {
                file: "programs.toml".into(),
                line: line_of_offset(&programs_bytes, e.valid_up_to()),
            })?;
        master.programs =
            Programs::parse(programs_text).map_err(|problem| MasterDataError::Invalid {
                file: "programs.toml".into(),
                problem,
            })?;
        master.files.push(InputFile {
            name: "programs.toml".into(),
            sha256: sha256_hex(&programs_bytes),
        });

        let partners = &mut master.partners;
        master.files.extend(read_table(
            data_dir,
            "partners.csv",
            true,
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
            |row| {
                let partner = Partner {
                    partner_id: row.parse("partner_id", partner_id, "digits")?,
                    name: row.text("name").to_owned(),
                    partner_type: row.parse(
                        "partner_type",
                        PartnerType::parse,
                        "`direct` or `indirect_provider`",
                    )?,
                    country: row.parse("country", country, "an ISO 3166-1 alpha-2 code")?,
                    payout_currency: row.parse(
                        "payout_currency",
                        |t| Currency::parse(t).filter(|c| c.minor_units().is_some()),
                        "an ISO 4217 currency code",
                    )?,
                    admin_email: row.text("admin_email").to_owned(),
                    enrolled_on: row.parse(
                        "enrolled_on",
                        optional_date,
                        "a date YYYY-MM-DD or empty",
                    )?,
                    legacy_portal: row.parse("legacy_portal", boolean, "`true` or `false`")?,
                };
                if partners.contains_key(&partner.partner_id) {
                    return Err(row.invalid(
                        "partner_id",
                        format!("partner `{}` is listed twice", partner.partner_id),
                    ));
                }
                partners.insert(partner.partner_id.clone(), partner);
                Ok(())
            },
        )?);

        let agreements = &mut master.agreements;
        master.files.extend(read_table(
            data_dir,
            "agreements.csv",
            false,
            &["partner_id", "kind", "status", "valid_from", "valid_to"],
            |row| {
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
                    .entry(row.parse("partner_id", partner_id, "digits")?)
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
            &["partner_id", "competency", "valid_from", "valid_to"],
            |row| {
                let competency = Competency {
                    competency: row.text("competency").to_owned(),
                    validity: row.validity()?,
                };
                competencies
                    .entry(row.parse("partner_id", partner_id, "digits")?)
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
            &["partner_id", "tax_profile", "payment_profile"],
            |row| {
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
                let id = row.parse("partner_id", partner_id, "digits")?;
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
            &["partner_id", "email", "name", "role", "active"],
            |row| {
                let user = User {
                    email: row.text("email").to_owned(),
                    name: row.text("name").to_owned(),
                    role: row.parse(
                        "role",
                        UserRole::parse,
                        "`incentive_admin`, `incentive_user` or `account_admin`",
                    )?,
                    active: row.parse("active", boolean, "`true` or `false`")?,
                };
                users
                    .entry(row.parse("partner_id", partner_id, "digits")?)
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
            &["period", "from_currency", "to_currency", "rate"],
            |row| {
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

/// 1-based line of a byte offset.
pub fn line_of_offset(bytes: &[u8], offset: usize) -> u64 {
    1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u64
}

fn read_file(path: &Path, name: &str, required: bool) -> Result<Option<Vec<u8>>, MasterDataError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            tracing::warn!(
                file = name,
                "optional master-data file is missing; read as empty"
            );
            Ok(None)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(MasterDataError::MissingFile { file: name.into() })
        }
        Err(source) => Err(MasterDataError::Io {
            file: name.into(),
            source,
        }),
    }
}

/// One data row of a master-data CSV, with the physical line it starts on.
struct Row<'a> {
    file: &'a str,
    line: u64,
    record: &'a csv::StringRecord,
    columns: &'a HashMap<&'static str, usize>,
}

impl Row<'_> {
    /// The field, trimmed of surrounding spaces (hand-edited snapshots often have them).
    fn text(&self, column: &'static str) -> &str {
        self.record.get(self.columns[column]).unwrap_or("").trim()
    }

    fn invalid(&self, column: &'static str, problem: String) -> MasterDataError {
        MasterDataError::InvalidField {
            file: self.file.into(),
            line: self.line,
            column,
            problem,
        }
    }

    fn parse<T>(
        &self,
        column: &'static str,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Result<T, MasterDataError> {
        let text = self.text(column);
        parse(text).ok_or_else(|| self.invalid(column, format!("`{text}` is not {expected}")))
    }

    fn validity(&self) -> Result<Validity, MasterDataError> {
        let valid_from = self.parse("valid_from", parse_date, "a date YYYY-MM-DD")?;
        let valid_to = self.parse("valid_to", optional_date, "a date YYYY-MM-DD or empty")?;
        if valid_to.is_some_and(|to| to < valid_from) {
            return Err(self.invalid("valid_to", "is before valid_from".into()));
        }
        Ok(Validity {
            valid_from,
            valid_to,
        })
    }
}

fn partner_id(text: &str) -> Option<String> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.to_owned())
}

fn country(text: &str) -> Option<String> {
    (text.len() == 2 && text.bytes().all(|b| b.is_ascii_uppercase())).then(|| text.to_owned())
}

fn optional_date(text: &str) -> Option<Option<NaiveDate>> {
    if text.is_empty() {
        Some(None)
    } else {
        parse_date(text).map(Some)
    }
}

fn boolean(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Reads a CSV snapshot file, calling `on_row` for each data row. Returns the file's hash,
/// or `None` when an optional file is absent.
fn read_table(
    dir: &Path,
    name: &str,
    required: bool,
    columns: &[&'static str],
    mut on_row: impl FnMut(&Row) -> Result<(), MasterDataError>,
) -> Result<Option<InputFile>, MasterDataError> {
    let path: PathBuf = dir.join(name);
    let Some(bytes) = read_file(&path, name, required)? else {
        return Ok(None);
    };
    if let Err(e) = std::str::from_utf8(&bytes) {
        return Err(MasterDataError::NotUtf8 {
            file: name.into(),
            line: line_of_offset(&bytes, e.valid_up_to()),
        });
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| MasterDataError::Malformed {
            file: name.into(),
            line: 1,
            problem: e.to_string(),
        })?
        .clone();
    let mut index = HashMap::new();
    for &column in columns {
        let position = headers.iter().position(|h| h.trim() == column).ok_or(
            MasterDataError::MissingColumn {
                file: name.into(),
                column,
            },
        )?;
        index.insert(column, position);
    }
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                if record.iter().all(|f| f.trim().is_empty()) {
                    continue; // a blank line carries no row
                }
                on_row(&Row {
                    file: name,
                    line,
                    record: &record,
                    columns: &index,
                })?;
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(MasterDataError::Malformed {
                    file: name.into(),
                    line,
                    problem: e.to_string(),
                });
            }
        }
    }
    Ok(Some(InputFile {
        name: name.into(),
        sha256: sha256_hex(&bytes),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    const PROGRAMS: &str = "[[program]]\nid = \"p\"\nname = \"P\"\npartner_type = \"direct\"\nmin_payout = { USD = \"50.00\" }\n";

    #[test]
    fn bad_master_row_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "programs.toml", PROGRAMS);
        write(
            dir.path(),
            "partners.csv",
            "partner_id,name,partner_type,country,payout_currency,admin_email,enrolled_on,legacy_portal\n\
             1,A,direct,US,USD,a@x.com,,false\n\
             2,B,direct,US,USX,b@x.com,,false\n",
        );
        let err = MasterData::load(dir.path()).unwrap_err().to_string();
        assert_eq!(
            err,
            "partners.csv: line 3: column `payout_currency`: `USX` is not an ISO 4217 currency code"
        );
    }

    #[test]
    fn missing_column_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "programs.toml", PROGRAMS);
        write(dir.path(), "partners.csv", "partner_id,name\n1,A\n");
        let err = MasterData::load(dir.path()).unwrap_err().to_string();
        assert_eq!(
            err,
            "partners.csv: line 1: missing required column `partner_type`"
        );
    }
}
