//! The master-data snapshot (every input file but `revenue/`), read afresh on every run.
//! Any bad row fails the whole load, naming file, line and column, before anything is written.
//!
//! Identifiers and codes (ids, kinds, statuses, dates, currencies, countries, booleans, roles,
//! emails, competency codes) are trimmed of surrounding spaces; text shown to people (partner
//! and user names) is kept exactly as given. A header naming a column twice, a NUL byte in any
//! field, or an email address that cannot be sent to fails the load. Rows about partners that
//! are not in `partners.csv` are warnings, not errors: they are listed with the run.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use super::lines::{LineCounter, line_of_offset};
use super::programs::{Programs, ProgramsError};
use super::warning::Warnings;
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
    #[error("programs.toml: {0}")]
    Programs(#[from] ProgramsError),
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
    /// What the load read past without using: rows of partners not in `partners.csv`, missing
    /// optional files.
    pub warnings: Warnings,
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

fn read_file(
    path: &Path,
    name: &str,
    required: bool,
    warnings: &mut Warnings,
) -> Result<Option<Vec<u8>>, MasterDataError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            tracing::warn!(
                file = name,
                "optional master-data file is missing; read as empty"
            );
            warnings.push(name, None, "optional file is missing; read as empty");
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
    /// The field exactly as given: for text shown to people (names), which keeps its spaces,
    /// tabs and leading `=` (the report writers quote and prefix it, SPEC §5).
    fn given(&self, column: &'static str) -> &str {
        // Invariant: `columns` holds the position of every column the caller reads, and a
        // record has as many fields as the header (the reader is not flexible).
        self.record.get(self.columns[column]).unwrap_or("")
    }

    /// The field trimmed of surrounding spaces: for identifiers and codes (hand-edited
    /// snapshots often have the spaces).
    fn text(&self, column: &'static str) -> &str {
        self.given(column).trim()
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

    /// An email address mail can be sent to, checked now rather than at `send`: a line break
    /// anywhere in the field (even around the address) could inject mail headers.
    fn email(&self, column: &'static str) -> Result<String, MasterDataError> {
        if self.given(column).contains(['\r', '\n']) {
            return Err(self.invalid(column, "the email address contains a line break".into()));
        }
        let text = self.text(column);
        match text.parse::<lettre::Address>() {
            Ok(_) => Ok(text.to_owned()),
            Err(e) => Err(self.invalid(column, format!("`{text}` is not an email address ({e})"))),
        }
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

/// The row's partner id; a partner that is not in `partners.csv` is a warning (the row is
/// kept but no partner reads it).
fn known_partner(
    row: &Row,
    partners: &BTreeMap<String, Partner>,
    warnings: &mut Warnings,
) -> Result<String, MasterDataError> {
    let id = row.parse("partner_id", partner_id, "digits")?;
    if !partners.contains_key(&id) {
        warnings.push(
            row.file,
            Some(row.line),
            format!("partner `{id}` is not in partners.csv; row not used"),
        );
    }
    Ok(id)
}

fn partner_id(text: &str) -> Option<String> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.to_owned())
}

/// A competency code: not empty (it must be able to match a program's requirement).
fn code(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
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
    warnings: &mut Warnings,
    columns: &[&'static str],
    mut on_row: impl FnMut(&Row, &mut Warnings) -> Result<(), MasterDataError>,
) -> Result<Option<InputFile>, MasterDataError> {
    let path: PathBuf = dir.join(name);
    let Some(bytes) = read_file(&path, name, required, warnings)? else {
        return Ok(None);
    };
    if let Err(e) = std::str::from_utf8(&bytes) {
        return Err(MasterDataError::NotUtf8 {
            file: name.into(),
            line: line_of_offset(&bytes, e.valid_up_to()),
        });
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    // The csv crate counts only `\n` as a line end; line numbers come from byte offsets.
    let mut lines = LineCounter::new(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| MasterDataError::Malformed {
            file: name.into(),
            line: e
                .position()
                .map_or(1, |p| lines.record_line(p.byte() as usize)),
            problem: e.to_string(),
        })?
        .clone();
    let nul_in = |record: &csv::StringRecord, line: u64| {
        record
            .iter()
            .position(|field| field.contains('\0'))
            .map(|at| MasterDataError::NulByte {
                file: name.into(),
                line,
                column: headers
                    .get(at)
                    .map_or_else(|| format!("#{}", at + 1), |h| h.trim().to_owned()),
            })
    };
    if let Some(error) = nul_in(&headers, 1) {
        return Err(error);
    }
    let mut index = HashMap::new();
    for &column in columns {
        let mut positions = headers
            .iter()
            .enumerate()
            .filter(|(_, h)| h.trim() == column)
            .map(|(at, _)| at);
        let position = positions.next().ok_or(MasterDataError::MissingColumn {
            file: name.into(),
            column,
        })?;
        if positions.next().is_some() {
            return Err(MasterDataError::DuplicateColumn {
                file: name.into(),
                column,
            });
        }
        index.insert(column, position);
    }
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record
                    .position()
                    .map_or(0, |p| lines.record_line(p.byte() as usize));
                if let Some(error) = nul_in(&record, line) {
                    return Err(error);
                }
                if record.iter().all(|f| f.trim().is_empty()) {
                    continue; // a blank line carries no row
                }
                on_row(
                    &Row {
                        file: name,
                        line,
                        record: &record,
                        columns: &index,
                    },
                    warnings,
                )?;
            }
            Err(e) => {
                let line = e
                    .position()
                    .map_or(0, |p| lines.record_line(p.byte() as usize));
                // The crate's own message carries its `\n`-only line count: said plainly instead.
                let problem = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("the row has {len} field(s) but the header has {expected_len}"),
                    _ => e.to_string(),
                };
                return Err(MasterDataError::Malformed {
                    file: name.into(),
                    line,
                    problem,
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

    const HEADER: &str = "partner_id,name,partner_type,country,payout_currency,admin_email,enrolled_on,legacy_portal";

    /// A data dir with `PROGRAMS` and `partners.csv` of the given rows.
    fn snapshot(rows: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "programs.toml", PROGRAMS);
        write(dir.path(), "partners.csv", &format!("{HEADER}\n{rows}"));
        dir
    }

    fn load_err(dir: &tempfile::TempDir) -> String {
        MasterData::load(dir.path()).unwrap_err().to_string()
    }

    #[test]
    fn a_column_named_twice_is_ambiguous() {
        let dir = snapshot("1,A,direct,US,USD,a@x.com,,false\n");
        write(
            dir.path(),
            "agreements.csv",
            "partner_id,kind,status,valid_from,valid_to, status\n1,mpn,terminated,2020-01-01,,active\n",
        );
        assert_eq!(
            load_err(&dir),
            "agreements.csv: line 1: column `status` appears more than once: the header is ambiguous"
        );
        // A repeated column the engine does not read is harmless.
        write(
            dir.path(),
            "agreements.csv",
            "partner_id,kind,status,valid_from,valid_to,note,note\n1,mpn,active,2020-01-01,,a,b\n",
        );
        assert!(MasterData::load(dir.path()).is_ok());
    }

    #[test]
    fn names_are_kept_as_given_codes_are_trimmed() {
        let dir = snapshot("  1 ,\tTabbed Trading , direct , US , USD , a@x.com , , false \n");
        write(
            dir.path(),
            "users.csv",
            "partner_id,email,name,role,active\n1, u@x.com ,  Ann  , incentive_admin , true\n",
        );
        let master = MasterData::load(dir.path()).unwrap();
        let partner = &master.partners["1"];
        assert_eq!(partner.name, "\tTabbed Trading ");
        assert_eq!(partner.admin_email, "a@x.com");
        assert_eq!(partner.payout_currency.code(), "USD");
        let user = &master.users["1"][0];
        assert_eq!(
            (user.email.as_str(), user.name.as_str()),
            ("u@x.com", "  Ann  ")
        );
        // Only the missing optional files are warned about: partner `1` is known.
        assert!(master.warnings.listed().iter().all(|w| w.line.is_none()));
    }

    #[test]
    fn email_addresses_are_checked_at_load() {
        let dir = snapshot("1,A,direct,US,USD,not-an-address,,false\n");
        assert!(
            load_err(&dir).starts_with(
                "partners.csv: line 2: column `admin_email`: `not-an-address` is not an email address"
            ),
            "{}",
            load_err(&dir)
        );
        let dir = snapshot("1,A,direct,US,USD,,,false\n");
        assert!(load_err(&dir).contains("column `admin_email`: `` is not an email address"));
        let dir = snapshot("1,A,direct,US,USD,a@x.com,,false\n");
        for email in ["\"a@x.com\r\nBcc: all@x.com\"", "\"a@x.com\n\"", "a@@x.com"] {
            write(
                dir.path(),
                "users.csv",
                &format!(
                    "partner_id,email,name,role,active\n1,u@x.com,U,incentive_user,true\n1,{email},V,incentive_user,true\n"
                ),
            );
            let err = load_err(&dir);
            assert!(
                err.starts_with("users.csv: line 3: column `email`: "),
                "{err}"
            );
        }
    }

    #[test]
    fn no_currency_and_currencies_without_minor_units_are_refused() {
        let dir = snapshot("1,A,direct,US,XXX,a@x.com,,false\n");
        assert_eq!(
            load_err(&dir),
            "partners.csv: line 2: column `payout_currency`: `XXX` is not an ISO 4217 currency code"
        );
        let dir = snapshot("1,A,direct,US,XAU,a@x.com,,false\n");
        assert_eq!(
            load_err(&dir),
            "partners.csv: line 2: column `payout_currency`: XAU has no minor units: it cannot be a payout currency"
        );
        let dir = snapshot("1,A,direct,US,USD,a@x.com,,false\n");
        write(
            dir.path(),
            "fx_rates.csv",
            "period,from_currency,to_currency,rate\n2026-10,XXX,USD,1\n",
        );
        assert!(load_err(&dir).starts_with("fx_rates.csv: line 2: column `from_currency`: `XXX`"));
    }

    #[test]
    fn a_nul_byte_in_any_field_fails_the_load() {
        let dir = snapshot("1,A\0B,direct,US,USD,a@x.com,,false\n");
        assert_eq!(
            load_err(&dir),
            "partners.csv: line 2: column `name`: contains a NUL byte"
        );
        let dir = snapshot("1,A,direct,US,USD,a@x.com,,false\n");
        write(
            dir.path(),
            "profiles.csv",
            "partner_id,tax_profile,payment_profile,note\n1,complete,validated,x\0\n",
        );
        assert_eq!(
            load_err(&dir),
            "profiles.csv: line 2: column `note`: contains a NUL byte"
        );
    }

    #[test]
    fn cr_only_line_ends_give_physical_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "programs.toml", PROGRAMS);
        write(
            dir.path(),
            "partners.csv",
            &format!(
                "{HEADER}\r1,A,direct,US,USD,a@x.com,,false\r\r2,B,direct,US,USX,b@x.com,,false\r"
            ),
        );
        assert_eq!(
            load_err(&dir),
            "partners.csv: line 4: column `payout_currency`: `USX` is not an ISO 4217 currency code"
        );
        write(
            dir.path(),
            "partners.csv",
            &format!("{HEADER}\r\n1,A,direct,US,USD,a@x.com,,false\r\n2,B,direct\r\n"),
        );
        assert_eq!(
            load_err(&dir),
            "partners.csv: line 3: the row has 3 field(s) but the header has 8"
        );
    }

    #[test]
    fn rows_of_unknown_partners_are_warnings() {
        let dir = snapshot("1,A,direct,US,USD,a@x.com,,false\n");
        write(
            dir.path(),
            "agreements.csv",
            "partner_id,kind,status,valid_from,valid_to\n1,mpn,active,2020-01-01,\n9,mpn,active,2020-01-01,\n",
        );
        write(
            dir.path(),
            "users.csv",
            "partner_id,email,name,role,active\n8,u@x.com,U,incentive_user,true\n",
        );
        let master = MasterData::load(dir.path()).unwrap();
        let listed: Vec<String> = master
            .warnings
            .listed()
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(
            listed,
            [
                "agreements.csv: line 3: partner `9` is not in partners.csv; row not used",
                "competencies.csv: optional file is missing; read as empty",
                "profiles.csv: optional file is missing; read as empty",
                "users.csv: line 2: partner `8` is not in partners.csv; row not used",
                "fx_rates.csv: optional file is missing; read as empty",
            ]
        );
    }

    #[test]
    fn an_empty_competency_code_is_refused() {
        let dir = snapshot("1,A,direct,US,USD,a@x.com,,false\n");
        write(
            dir.path(),
            "competencies.csv",
            "partner_id,competency,valid_from,valid_to\n1, ,2020-01-01,\n",
        );
        assert_eq!(
            load_err(&dir),
            "competencies.csv: line 2: column `competency`: `` is not a competency code"
        );
    }

    #[test]
    fn programs_errors_name_the_file() {
        let dir = snapshot("1,A,direct,US,USD,a@x.com,,false\n");
        write(
            dir.path(),
            "programs.toml",
            &PROGRAMS.replace("name =", "enabled = false\nname ="),
        );
        assert_eq!(
            load_err(&dir),
            "programs.toml: program `p`: unknown key `enabled` (line 3)"
        );
    }
}
