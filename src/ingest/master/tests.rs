//! Tests of the master-data load: errors name file, line and column; names kept, codes
//! trimmed; line numbers with any line ends; warnings for unknown partners.

use super::*;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

const PROGRAMS: &str = "[[program]]\nid = \"p\"\nname = \"P\"\npartner_type = \"direct\"\nrequired_competencies = []\nmin_payout = { USD = \"50.00\" }\n[[program.rates]]\nfrom = \"2026-01\"\nazure = \"0.05\"\n";

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

const HEADER: &str =
    "partner_id,name,partner_type,country,payout_currency,admin_email,enrolled_on,legacy_portal";

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
