//! Tests of `programs.toml`: rate tables in force, strict keys and values, errors with
//! program, key and line.

use super::*;
use crate::domain::money::Currency;

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

fn refused(text: &str) -> String {
    Programs::parse(text).unwrap_err().to_string()
}

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
    let err = refused(&TOML.replace("\"0.06\"", "0.06"));
    assert!(err.contains("quoted decimal string"), "{err}");
}

#[test]
fn unknown_program_keys_are_refused_with_program_key_and_line() {
    let typo = TOML.replace("required_competencies", "required_competency");
    assert_eq!(
        refused(&typo),
        "program `csp-indirect`: unknown key `required_competency` (line 6)"
    );
    for (line, extra) in [
        ("enabled = false", "enabled"),
        ("max_payout = { USD = \"9\" }", "max_payout"),
    ] {
        let text = TOML.replace("min_payout", &format!("{line}\nmin_payout"));
        assert_eq!(
            refused(&text),
            format!("program `csp-indirect`: unknown key `{extra}` (line 7)")
        );
    }
}

#[test]
fn a_singular_rate_table_is_an_unknown_key_not_an_empty_program() {
    let text = TOML.replace("[[program.rates]]", "[[program.rate]]");
    let err = refused(&text);
    assert!(
        err.starts_with("program `csp-indirect`: unknown key `rate` (line "),
        "{err}"
    );
}

#[test]
fn unknown_top_level_keys_are_refused() {
    let err = refused(&format!("version = 2\n{TOML}"));
    assert_eq!(err, "unknown key `version` (line 1)");
    let err = refused("[program]\nid = \"x\"\n");
    assert!(
        err.contains("`program` must be an array of tables, written `[[program]]`"),
        "{err}"
    );
    let single = "[[program]]\nid = \"a\"\nname = \"A\"\npartner_type = \"direct\"\nrequired_competencies = []\n[program.rates]\nfrom = \"2026-01\"\n";
    let err = refused(single);
    assert_eq!(
        err,
        "program `a`: `rates` must be an array of tables, written `[[program.rates]]` (line 6)"
    );
}

#[test]
fn rate_table_keys_must_be_categories_with_string_values() {
    for (key, value, problem) in [
        ("\"Azure Plan\"", "\"0.05\"", "is not a product category"),
        ("\"\"", "\"0.05\"", "is not a product category"),
        ("min_payout", "\"0.05\"", "is not a product category"),
        ("security", "true", "must be a quoted decimal string"),
        (
            "security",
            "{ x = \"1\" }",
            "must be a quoted decimal string",
        ),
        ("form", "\"2026-01\"", "not a plain decimal"),
    ] {
        let text = TOML.replace("m365 = \"0.08\"", &format!("{key} = {value}"));
        let err = refused(&text);
        assert!(
            err.starts_with("program `csp-indirect`: rates from 2026-01: `")
                && err.contains(problem)
                && err.ends_with("(line 12)"),
            "{key} = {value}: {err}"
        );
    }
}

#[test]
fn negative_rates_are_refused_always() {
    for rate in ["-0.05", "-0"] {
        let err = refused(&TOML.replace("\"0.08\"", &format!("\"{rate}\"")));
        assert!(err.contains("a rate is never negative"), "{err}");
        let opted_in = TOML
            .replace("\"0.08\"", &format!("\"{rate}\""))
            .replace("min_payout", "allow_rates_above_one = true\nmin_payout");
        assert!(refused(&opted_in).contains("a rate is never negative"));
    }
}

#[test]
fn rates_above_one_need_the_programs_opt_in() {
    let above = TOML.replace("\"0.08\"", "\"1.5\"");
    let err = refused(&above);
    assert!(
        err.contains("`m365` `1.5` is above 1") && err.contains("allow_rates_above_one = true"),
        "{err}"
    );
    assert!(Programs::parse(&TOML.replace("\"0.08\"", "\"1\"")).is_ok());
    let opted_in = above.replace("min_payout", "allow_rates_above_one = true\nmin_payout");
    let programs = Programs::parse(&opted_in).unwrap();
    let program = programs.for_type(PartnerType::IndirectProvider).unwrap();
    assert_eq!(
        program
            .rate("m365", "2026-01".parse().unwrap())
            .unwrap()
            .text,
        "1.5"
    );
    let not_a_flag = above.replace("min_payout", "allow_rates_above_one = \"yes\"\nmin_payout");
    assert!(refused(&not_a_flag).contains("must be `true` or `false`"));
}

#[test]
fn negative_and_malformed_thresholds_are_refused() {
    let err = refused(&TOML.replace("\"50.00\"", "\"-50.00\""));
    assert_eq!(
        err,
        "program `csp-indirect`: `min_payout.USD` `-50.00` is negative: a payout threshold is never negative (line 7)"
    );
    assert!(refused(&TOML.replace("\"5000\"", "5000")).contains("quoted decimal string"));
    assert!(
        refused(&TOML.replace("\"5000\"", "\"5000.5\"")).contains("more than 0 decimal places")
    );
    assert!(
        refused(&TOML.replace("JPY", "XAU")).contains("`min_payout.XAU` XAU has no minor units")
    );
    assert!(refused(&TOML.replace("JPY", "XXX")).contains("is not an ISO 4217 currency"));
}

#[test]
fn ids_and_names_must_be_present_and_unique() {
    assert_eq!(
        refused(&TOML.replace("id = \"csp-indirect\"", "id = \"\"")),
        "program #1: `id` must not be empty (line 3)"
    );
    assert_eq!(
        refused(&TOML.replace("id = \"csp-indirect\"\n", "")),
        "program #1: missing key `id` (line 2)"
    );
    assert_eq!(
        refused(&TOML.replace("\"CSP Indirect Provider Incentive\"", "\"  \"")),
        "program `csp-indirect`: `name` must not be empty (line 4)"
    );
    let second = "\n[[program]]\nid = \"csp-indirect\"\nname = \"Other\"\npartner_type = \"direct\"\nrequired_competencies = []\n[[program.rates]]\nfrom = \"2026-01\"\nazure = \"0.01\"\n";
    assert_eq!(
        refused(&format!("{TOML}{second}")),
        "two programs have the id `csp-indirect` (lines 2 and 18)"
    );
    let shared = "\n[[program]]\nid = \"other\"\nname = \"Other\"\npartner_type = \"indirect_provider\"\nrequired_competencies = []\n[[program.rates]]\nfrom = \"2026-01\"\nazure = \"0.01\"\n";
    assert!(
        refused(&format!("{TOML}{shared}")).contains("both have partner_type `indirect_provider`")
    );
}

#[test]
fn names_are_kept_as_given_and_codes_must_be_clean() {
    let spaced = TOML.replace("\"CSP Indirect Provider Incentive\"", "\" CSP \"");
    let programs = Programs::parse(&spaced).unwrap();
    assert_eq!(
        programs
            .for_type(PartnerType::IndirectProvider)
            .unwrap()
            .name,
        " CSP "
    );
    assert!(
        refused(&TOML.replace("\"cloud-platform-gold\"", "\" cloud-platform-gold\""))
            .contains("must not begin or end with spaces")
    );
    assert!(
        refused(&TOML.replace("\"cloud-platform-gold\"", "\"\""))
            .contains("`required_competencies` must not be empty")
    );
    assert!(refused(&TOML.replace("\"cloud-platform-gold\"", "\"a\\u0000b\"")).contains("NUL"));
    assert!(
        refused(&TOML.replace("[\"cloud-platform-gold\"]", "\"cloud-platform-gold\""))
            .contains("must be an array")
    );
}

#[test]
fn duplicate_rate_tables_and_bad_periods_are_refused() {
    let err = refused(&TOML.replace("2026-07", "2026-01"));
    assert!(err.contains("two rate tables start at 2026-01"), "{err}");
    let err = refused(&TOML.replace("\"2026-07\"", "\"July\""));
    assert_eq!(
        err,
        "program `csp-indirect`: rate table #2: `from` `July` is not a period \"YYYY-MM\" (line 15)"
    );
    let err = refused(&TOML.replace("from = \"2026-07\"\n", ""));
    assert!(err.contains("rate table #2: missing key `from`"), "{err}");
}

#[test]
fn syntax_errors_name_the_line() {
    let err = refused("[[program]]\nid = \"x\n");
    assert!(err.starts_with("line 2: not valid TOML"), "{err}");
}

#[test]
fn a_deleted_competency_or_rates_line_is_refused_not_read_as_none() {
    let err = refused(&TOML.replace("required_competencies = [\"cloud-platform-gold\"]\n", ""));
    assert!(
        err.starts_with("program `csp-indirect`: missing key `required_competencies` (line "),
        "{err}"
    );
    let no_rates = &TOML[..TOML.find("[[program.rates]]").unwrap()];
    let err = refused(no_rates);
    assert!(
        err.starts_with("program `csp-indirect`: missing key `rates` (line "),
        "{err}"
    );
    // None required is said explicitly.
    Programs::parse(&TOML.replace("[\"cloud-platform-gold\"]", "[]")).unwrap();
}
