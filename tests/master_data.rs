//! Master data and `programs.toml` through the real binary, on every backend: a typo or a
//! nonsense value fails the run before anything is written, naming file, line and key; text
//! shown to people is kept as given; email addresses are checked at load; and what a run reads
//! past (rows of unknown partners, entries of `revenue/` that are not revenue files) is listed
//! as warnings in the run's output and in `payout status`.

mod common;

use common::{Env, backends};

/// Runs `payout run --period 2026-10`, expects it to fail, and returns its standard error.
fn run_fails(env: &Env) -> String {
    let output = env.payout(&["run", "--period", "2026-10"]);
    assert!(
        !output.status.success(),
        "the run should have failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Nothing of a failed run may be visible: no report, no ingested revenue.
fn assert_nothing_written(env: &Env) {
    assert!(
        !env.reports.join("2026-10").exists(),
        "no report may be written"
    );
    let status = env.status_json();
    assert_eq!(
        status["periods"].as_array().unwrap().len(),
        0,
        "no revenue may be ingested: {status}"
    );
}

#[tokio::test]
async fn unknown_program_keys_fail_the_run_naming_the_file_and_the_key() {
    for backend in backends() {
        for (from, to, key) in [
            // A typo would otherwise drop the competency rule: partners without it get paid.
            (
                "required_competencies = [\"cloud-platform-gold\", \"cloud-productivity-gold\"]",
                "required_competency = [\"cloud-platform-gold\"]",
                "required_competency",
            ),
            // A singular table name would otherwise leave the program without rates: all earn 0.
            (
                "[[program.rates]]\nfrom = \"2026-01\"\nazure = \"0.03\"",
                "[[program.rate]]\nfrom = \"2026-01\"\nazure = \"0.03\"",
                "rate",
            ),
            (
                "partner_type = \"direct\"",
                "partner_type = \"direct\"\nenabled = false",
                "enabled",
            ),
            (
                "partner_type = \"direct\"",
                "partner_type = \"direct\"\nmax_payout = { USD = \"1000.00\" }",
                "max_payout",
            ),
        ] {
            let env = Env::new(backend).await;
            env.replace_in_data("programs.toml", from, to);
            let stderr = run_fails(&env);
            let program = if key == "required_competency" {
                "csp-indirect"
            } else {
                "csp-direct"
            };
            assert!(
                stderr.contains(&format!(
                    "programs.toml: program `{program}`: unknown key `{key}` (line "
                )),
                "{key}: {stderr}"
            );
            assert_eq!(
                stderr.matches("unknown key").count(),
                1,
                "the cause is said once: {stderr}"
            );
            assert_nothing_written(&env);
        }
    }
}

#[tokio::test]
async fn nonsense_rates_and_thresholds_fail_the_run_with_the_reason() {
    for backend in backends() {
        for (from, to, reason) in [
            (
                "security = \"0.125\"",
                "security = \"-0.125\"",
                "programs.toml: program `csp-direct`: rates from 2026-01: `security` `-0.125` is negative: a rate is never negative (line 32)",
            ),
            (
                "security = \"0.125\"",
                "security = \"12.5\"",
                "`security` `12.5` is above 1",
            ),
            (
                "KWD = \"15.000\"",
                "KWD = \"-15.000\"",
                "`min_payout.KWD` `-15.000` is negative",
            ),
            (
                "id = \"csp-direct\"",
                "id = \"csp-indirect\"",
                "two programs have the id `csp-indirect` (lines 3 and 21)",
            ),
            (
                "name = \"CSP Direct Reseller Incentive\"",
                "name = \"\"",
                "program `csp-direct`: `name` must not be empty (line 23)",
            ),
        ] {
            let env = Env::new(backend).await;
            env.replace_in_data("programs.toml", from, to);
            let stderr = run_fails(&env);
            assert!(stderr.contains(reason), "{to}: {stderr}");
            assert_nothing_written(&env);
        }
        // With the program's explicit opt-in, a rate above 1 is accepted.
        let env = Env::new(backend).await;
        env.replace_in_data(
            "programs.toml",
            "security = \"0.125\"",
            "security = \"1.25\"",
        );
        env.replace_in_data(
            "programs.toml",
            "partner_type = \"direct\"",
            "partner_type = \"direct\"\nallow_rates_above_one = true",
        );
        env.ok(&["run", "--period", "2026-10"]);
    }
}

#[tokio::test]
async fn a_column_named_twice_fails_the_run_naming_file_and_column() {
    for backend in backends() {
        let env = Env::new(backend).await;
        let agreements = std::fs::read_to_string(env.data.join("agreements.csv")).unwrap();
        let doubled: String = agreements
            .lines()
            .enumerate()
            .map(|(i, line)| {
                if i == 0 {
                    format!("{line},status\n")
                } else {
                    format!("{line},terminated\n")
                }
            })
            .collect();
        env.write_data("agreements.csv", &doubled);
        let stderr = run_fails(&env);
        assert!(
            stderr.contains(
                "agreements.csv: line 1: column `status` appears more than once: the header is ambiguous"
            ),
            "{stderr}"
        );
        assert_nothing_written(&env);
    }
}

#[tokio::test]
async fn a_name_is_kept_as_given_and_a_leading_tab_is_prefixed_in_reports() {
    for backend in backends() {
        let env = Env::new(backend).await;
        env.replace_in_data(
            "partners.csv",
            "1000006,Northwind Traders,",
            "1000006,\tTabbed Trading,",
        );
        env.ok(&["run", "--period", "2026-10"]);
        let payouts = env.report("2026-10", "payouts.csv");
        assert!(
            payouts.contains("\n1000006,'\tTabbed Trading,csp-direct,2026-10,USD,27.31,"),
            "{payouts}"
        );
    }
}

#[tokio::test]
async fn a_bad_email_address_fails_the_run_naming_file_line_and_column() {
    for backend in backends() {
        let env = Env::new(backend).await;
        env.replace_in_data("partners.csv", "ap@northwind.example", "ap at northwind");
        let stderr = run_fails(&env);
        assert!(
            stderr.contains("partners.csv: line 7: column `admin_email`: `ap at northwind` is not an email address"),
            "{stderr}"
        );
        assert_nothing_written(&env);

        // A line break in an address fails at load, not at `send`.
        let env = Env::new(backend).await;
        env.append_data(
            "users.csv",
            "1000006,\"ap@northwind.example\r\nBcc: everyone@example.com\",Eve,incentive_user,true\n",
        );
        let stderr = run_fails(&env);
        let line = std::fs::read_to_string(env.data.join("users.csv"))
            .unwrap()
            .lines()
            .count()
            - 1;
        assert!(
            stderr.contains(&format!(
                "users.csv: line {line}: column `email`: the email address contains a line break"
            )),
            "{stderr}"
        );
        assert_nothing_written(&env);
    }
}

#[tokio::test]
async fn no_currency_xxx_is_an_invalid_revenue_currency() {
    for backend in backends() {
        let env = Env::new(backend).await;
        env.write_data(
            "revenue/2026-10-xxx.csv",
            "record_id,partner_id,customer_id,product_category,billing_month,amount,currency\n\
             X-1,1000006,C-040,azure,2026-10,100.00,XXX\n",
        );
        env.ok(&["run", "--period", "2026-10"]);
        let exceptions = env.report("2026-10", "exceptions.csv");
        assert!(
            exceptions.contains("revenue/2026-10-xxx.csv,2,X-1,INVALID_CURRENCY,"),
            "{exceptions}"
        );
    }
}

#[tokio::test]
async fn rows_of_unknown_partners_and_skipped_revenue_entries_are_listed_as_warnings() {
    for backend in backends() {
        let env = Env::new(backend).await;
        let expected_reports = {
            let clean = Env::new(backend).await;
            clean.ok(&["run", "--period", "2026-10"]);
            common::CSV_REPORTS.map(|file| clean.report("2026-10", file))
        };
        let agreements_line = std::fs::read_to_string(env.data.join("agreements.csv"))
            .unwrap()
            .lines()
            .count()
            + 1;
        env.append_data("agreements.csv", "1000999,mpn,active,2020-01-01,\n");
        let revenue = env.data.join("revenue");
        std::fs::create_dir(revenue.join("archive")).unwrap();
        std::fs::write(revenue.join(".DS_Store"), "x").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(
                env.dir.path().join("nowhere.csv"),
                revenue.join("gone.csv"),
            )
            .unwrap();
            let made = std::process::Command::new("mkfifo")
                .arg(revenue.join("pipe.csv"))
                .status()
                .unwrap();
            assert!(made.success());
        }

        let output = env.ok(&["run", "--period", "2026-10"]);
        let expected = [
            format!("agreements.csv: line {agreements_line}: partner `1000999` is not in partners.csv; row not used"),
            "revenue/.DS_Store: hidden entry; skipped".to_owned(),
            "revenue/archive: folder (revenue files are read from revenue/ itself, not its subfolders); skipped".to_owned(),
            "revenue/gone.csv: symbolic link to a missing file; skipped".to_owned(),
            "revenue/pipe.csv: FIFO, not a regular file; skipped".to_owned(),
        ];
        assert!(output.contains("\n5 warning(s):\n"), "{output}");
        for warning in &expected {
            assert!(
                output.contains(&format!("\n  {warning}")),
                "{warning}: {output}"
            );
        }
        // The warnings change no report.
        for (file, clean) in common::CSV_REPORTS.iter().zip(&expected_reports) {
            assert_eq!(&env.report("2026-10", file), clean, "{file}");
        }

        let status = env.status_json();
        let latest = status["runs"][0]["id"].as_str().unwrap().to_owned();
        assert_eq!(status["runs"][0]["warnings"], 5);
        let listed: Vec<String> = status["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                assert_eq!(w["run_id"], latest.as_str());
                match w["line"].as_u64() {
                    Some(line) => format!(
                        "{}: line {line}: {}",
                        w["file"].as_str().unwrap(),
                        w["message"].as_str().unwrap()
                    ),
                    None => format!(
                        "{}: {}",
                        w["file"].as_str().unwrap(),
                        w["message"].as_str().unwrap()
                    ),
                }
            })
            .collect();
        assert_eq!(listed, expected);
        let text = env.ok(&["status"]);
        assert!(
            text.contains(&format!("WARNINGS (latest run {latest})")),
            "{text}"
        );
        assert!(
            text.contains("  revenue/pipe.csv: FIFO, not a regular file; skipped"),
            "{text}"
        );
        assert!(text.contains(", 5 warning(s)"), "{text}");

        // Once the snapshot is clean, the latest run has no warnings.
        env.replace_in_data("agreements.csv", "1000999,mpn,active,2020-01-01,\n", "");
        std::fs::remove_dir(revenue.join("archive")).unwrap();
        for name in [".DS_Store", "gone.csv", "pipe.csv"] {
            std::fs::remove_file(revenue.join(name)).unwrap();
        }
        let output = env.ok(&["run", "--period", "2026-10"]);
        assert!(!output.contains("warning"), "{output}");
        assert_eq!(env.status_json()["warnings"].as_array().unwrap().len(), 0);
    }
}
