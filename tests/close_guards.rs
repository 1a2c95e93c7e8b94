//! The guards of `close` and the money they keep, through the real binary on both backends: a
//! month is closed only once it has ended (today's date in the configured zone) and only with
//! the figures of its latest draft; a partner removed from partners.csv keeps its balance and
//! lines in the store and is listed as `PARTNER_MISSING`; a run that fails on master data is
//! recorded and shown by `status`.

mod common;

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, Timelike, Utc};
use common::{Env, backends};
use payout::store::Store;
use sqlx::Row;

/// The month in progress in `zone`, by the real clock, and the first day of the next one.
fn current_month(zone: chrono_tz::Tz) -> (String, NaiveDate) {
    let today = Utc::now().with_timezone(&zone).date_naive();
    let next = if today.month() == 12 {
        NaiveDate::from_ymd_opt(today.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(today.year(), today.month() + 1, 1)
    };
    (today.format("%Y-%m").to_string(), next.unwrap())
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs the binary and returns its standard error, failing the test if it exits 0.
fn refused(env: &Env, args: &[&str]) -> String {
    let output = env.payout(args);
    assert!(
        !output.status.success(),
        "payout {args:?} should have been refused: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr(&output)
}

async fn balance_rows(env: &Env) -> Vec<(String, String, String, String, String)> {
    let store = Store::connect(&env.database_url).await.unwrap();
    sqlx::query(
        "SELECT partner_id, currency, held, carried, period FROM balances ORDER BY partner_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get::<String, _>(1),
            r.get::<String, _>(2),
            r.get::<String, _>(3),
            r.get::<String, _>(4),
        )
    })
    .collect()
}

fn remove_partner(env: &Env, partner_id: &str) {
    let text = std::fs::read_to_string(env.data.join("partners.csv")).unwrap();
    let kept: String = text
        .lines()
        .filter(|line| !line.starts_with(&format!("{partner_id},")))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(kept, text, "{partner_id} is in partners.csv");
    env.write_data("partners.csv", &kept);
}

#[tokio::test]
async fn a_month_that_has_not_ended_is_not_closed_and_nothing_changes() {
    for backend in backends() {
        let env = Env::new(backend).await;
        let (month, from) = current_month(chrono_tz::UTC);
        let message = refused(&env, &["close", "--period", &month]);
        assert!(
            message.contains(&format!(
                "{month} has not ended: it can be closed from {from} (UTC)"
            )),
            "{message}"
        );
        assert_eq!(message.trim().lines().count(), 1, "{message}");
        let message = refused(&env, &["close", "--period", "2031-01"]);
        assert!(
            message.contains("2031-01 has not ended: it can be closed from 2031-02-01 (UTC)"),
            "{message}"
        );
        // Judged in the configured zone, from the flag or the environment.
        let (month, from) = current_month(chrono_tz::Pacific::Kiritimati);
        let message = refused(
            &env,
            &[
                "--time-zone",
                "Pacific/Kiritimati",
                "close",
                "--period",
                &month,
            ],
        );
        assert!(
            message.contains(&format!(
                "it can be closed from {from} (Pacific/Kiritimati)"
            )),
            "{message}"
        );
        let output = env
            .command(&["close", "--period", "2031-01"])
            .env("PAYOUT_TIME_ZONE", "Asia/Seoul")
            .output()
            .unwrap();
        assert!(
            stderr(&output).contains("(Asia/Seoul)"),
            "{}",
            stderr(&output)
        );

        // Nothing was read into or written to the store: no run, no revenue, no close.
        let status = env.status_json();
        assert_eq!(status["runs"].as_array().unwrap().len(), 0, "{status}");
        assert_eq!(status["periods"].as_array().unwrap().len(), 0, "{status}");
        assert!(!env.reports.exists());

        // A month that has ended closes as before.
        env.ok(&["close", "--period", "2026-09"]);
    }
}

#[tokio::test]
async fn a_time_zone_that_is_not_an_iana_name_is_refused_wherever_it_is_set() {
    let env = Env::new(common::Backend::Sqlite).await;
    let message = refused(&env, &["--time-zone", "Mars/Olympus", "status"]);
    assert!(
        message.contains(
            "--time-zone (or PAYOUT_TIME_ZONE) `Mars/Olympus`: not an IANA time zone name"
        ),
        "{message}"
    );
    std::fs::write(
        env.dir.path().join("payout.toml"),
        "time_zone = \"utc+1\"\n",
    )
    .unwrap();
    let message = refused(&env, &["status"]);
    assert!(
        message.contains("payout.toml: time_zone `utc+1`: not an IANA time zone name"),
        "{message}"
    );
    // The flag wins over the file.
    env.ok(&["--time-zone", "Europe/Dublin", "status"]);
    std::fs::write(
        env.dir.path().join("payout.toml"),
        "time_zone = \"Europe/Dublin\"\n",
    )
    .unwrap();
    env.ok(&["status"]);
}

/// Fires a `monthly-close` job once through the scheduler with `period = "<rule>"`; returns the
/// period it worked on and the fire's recorded status and detail.
async fn fire_scheduled_close(env: &Env, rule: &str) -> (String, String, String) {
    use clap::Parser;
    use payout::scheduler::{ManualClock, Scheduler, load_jobs};

    let jobs = env.dir.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(
        jobs.join("monthly-close.toml"),
        format!("name = \"monthly-close\"\nschedule = \"0 * * * * *\"\ntime_zone = \"UTC\"\ncommand = \"close\"\nperiod = \"{rule}\"\nenabled = true\n"),
    )
    .unwrap();
    let cli = payout::cli::Cli::try_parse_from([
        "payout",
        "--data",
        env.data.to_str().unwrap(),
        "--reports",
        env.reports.to_str().unwrap(),
        "--database-url",
        &env.database_url,
        "status",
    ])
    .unwrap();
    let settings = payout::settings::Settings::resolve(&cli).unwrap();
    let store = Store::connect(&env.database_url).await.unwrap();
    let (specs, errors) = load_jobs(&jobs);
    assert!(errors.is_empty(), "{errors:?}");
    let start = Utc::now().with_nanosecond(0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let runner = payout::commands::job_runner(settings, store.clone(), jobs.clone());
    let mut scheduler = Scheduler::new(store.clone(), specs, clock.clone(), runner);
    scheduler.tick().await.unwrap();
    clock.advance(chrono::Duration::minutes(1));
    let fired = scheduler.tick().await.unwrap();
    scheduler.wait_idle().await;
    assert_eq!(fired.len(), 1);
    let month = fired[0].period.unwrap().to_string();
    let row = sqlx::query("SELECT status, detail FROM job_fires WHERE job = 'monthly-close'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    (month, row.get(0), row.get(1))
}

/// `monthly-close` with `period = "current"` fires inside the month: the fire is recorded as
/// failed with the reason, and the scheduler goes on.
#[tokio::test]
async fn a_scheduled_close_of_the_current_month_is_a_failed_fire_with_the_reason() {
    use payout::scheduler::Clock;
    for backend in backends() {
        let env = Env::new(backend).await;
        let (month, status, detail) = fire_scheduled_close(&env, "current").await;
        assert_eq!(
            month,
            payout::scheduler::SystemClock
                .now()
                .format("%Y-%m")
                .to_string()
        );
        assert_eq!(status, "failed", "{backend:?}");
        assert!(
            detail.contains(&format!("{month} has not ended: it can be closed from")),
            "{detail}"
        );
        assert!(env.status_json()["periods"].as_array().unwrap().is_empty());
    }
}

/// The scheduler never closes a month nobody has reviewed: an ended month with no draft is a
/// failed fire, and nothing is closed.
#[tokio::test]
async fn a_scheduled_close_of_a_month_without_a_draft_is_refused() {
    for backend in backends() {
        let env = Env::new(backend).await;
        let (month, status, detail) = fire_scheduled_close(&env, "previous").await;
        assert_eq!(status, "failed", "{backend:?}");
        assert_eq!(
            detail,
            format!(
                "{month} has no draft: a scheduled close needs a reviewed draft (`payout run --period {month}`) first"
            ),
        );
        assert!(env.status_json()["periods"].as_array().unwrap().is_empty());
    }
}

#[tokio::test]
async fn close_refuses_figures_that_differ_from_the_reviewed_draft() {
    for backend in backends() {
        let env = Env::new(backend).await;
        env.ok(&["run", "--period", "2026-09"]);
        let draft = env.report_bytes("2026-09");

        // A file dropped after the review.
        env.write_data(
            "revenue/2026-09-extra.csv",
            "record_id,partner_id,customer_id,product_category,billing_month,amount,currency\n\
             X-1,1000001,C-001,azure,2026-09,1000.00,USD\n",
        );
        let message = refused(&env, &["close", "--period", "2026-09"]);
        assert!(
            message.contains("the figures would differ from its latest draft")
                && message.contains("new revenue file(s): revenue/2026-09-extra.csv")
                && message.contains("run the draft again (`payout run --period 2026-09`)"),
            "{message}"
        );
        assert_eq!(message.trim().lines().count(), 1, "{message}");
        assert_eq!(draft, env.report_bytes("2026-09"), "the draft stands");
        let status = env.status_json();
        assert_eq!(status["periods"][0]["state"], "open", "{status}");
        assert_eq!(status["outbox"]["queued"], serde_json::Value::Null);
        assert_eq!(status["runs"][0]["command"], "close");
        assert_eq!(status["runs"][0]["outcome"], "failed");

        // A changed master-data snapshot.
        env.ok(&["run", "--period", "2026-09"]);
        env.replace_in_data(
            "profiles.csv",
            "1000013,complete,pending",
            "1000013,complete,validated",
        );
        let message = refused(&env, &["close", "--period", "2026-09"]);
        assert!(
            message.contains("master-data snapshot changed: profiles.csv")
                && !message.contains("new revenue file"),
            "{message}"
        );

        // Drafted again and reviewed: the close produces the draft.
        env.ok(&["run", "--period", "2026-09"]);
        let reviewed = env.report("2026-09", "payouts.csv");
        assert!(reviewed.contains("1000001,"));
        env.ok(&["close", "--period", "2026-09"]);
        assert_eq!(env.report("2026-09", "payouts.csv"), reviewed);

        // A closed period stays a no-op whatever changed (SPEC §7.14).
        env.replace_in_data(
            "profiles.csv",
            "1000013,complete,validated",
            "1000013,complete,pending",
        );
        assert!(
            env.ok(&["close", "--period", "2026-09"])
                .contains("already closed")
        );
    }
}

#[tokio::test]
async fn close_refuses_a_draft_made_before_retried_rows_or_an_earlier_close() {
    for backend in backends() {
        let env = Env::new(backend).await;
        // October drafted while September is open: its balances move when September closes.
        env.ok(&["run", "--period", "2026-10"]);
        env.ok(&["close", "--period", "2026-09"]);
        let message = refused(&env, &["close", "--period", "2026-10"]);
        assert!(
            message.contains("another period was closed since the draft"),
            "{message}"
        );

        // The unknown partner of the fixtures arrives after the draft: its rows are retried.
        env.ok(&["run", "--period", "2026-10"]);
        env.append_data(
            "partners.csv",
            "1000099,Tailwind Traders,direct,US,USD,ap@tailwind.example,2025-01-01,false\n",
        );
        let message = refused(&env, &["close", "--period", "2026-10"]);
        assert!(
            message.contains("master-data snapshot changed: partners.csv")
                && message.contains("retried row(s) ingested since the draft"),
            "{message}"
        );
        env.ok(&["run", "--period", "2026-10"]);
        let draft = env.report("2026-10", "payouts.csv");
        env.ok(&["close", "--period", "2026-10"]);
        assert_eq!(env.report("2026-10", "payouts.csv"), draft);
    }
}

#[tokio::test]
async fn a_removed_partner_keeps_its_balance_and_is_listed_until_it_is_back() {
    for backend in backends() {
        let env = Env::new(backend).await;
        env.ok(&["close", "--period", "2026-09"]);
        env.ok(&["close", "--period", "2026-10"]);
        let before = balance_rows(&env).await;
        let kept = |rows: &[(String, String, String, String, String)], id: &str| {
            rows.iter().find(|r| r.0 == id).cloned().unwrap()
        };
        assert_eq!(
            kept(&before, "1000013"),
            (
                "1000013".into(),
                "EUR".into(),
                "100.00".into(),
                "0.00".into(),
                "2026-10".into()
            )
        );
        assert_eq!(kept(&before, "1000015").3, "-120.00");

        remove_partner(&env, "1000013");
        remove_partner(&env, "1000015");
        env.ok(&["run", "--period", "2026-11"]);
        let exceptions = env.report("2026-11", "exceptions.csv");
        let lucerne = "partners.csv,,,PARTNER_MISSING,\"partner 1000013 is not in partners.csv; kept in the store, untouched by close, until it is back: held 100.00 EUR, carried 0.00 EUR\",,1000013,,,,false\n";
        let trey = "partners.csv,,,PARTNER_MISSING,\"partner 1000015 is not in partners.csv; kept in the store, untouched by close, until it is back: held 0.00 USD, carried -120.00 USD\",,1000015,,,,false\n";
        assert!(
            exceptions.contains(&format!(
                "detail,raw,partner_id,billing_month,amount,currency,retried\n{lucerne}{trey}"
            )),
            "{exceptions}"
        );
        let payouts = env.report("2026-11", "payouts.csv");
        assert!(!payouts.contains("1000013") && !payouts.contains("1000015"));

        let status = env.status_json();
        assert_eq!(status["exceptions"]["PARTNER_MISSING"], 2);
        let missing = status["partners_missing"].as_array().unwrap();
        assert_eq!(missing.len(), 2, "{status}");
        assert_eq!(missing[0]["partner_id"], "1000013");
        assert!(
            missing[1]["detail"]
                .as_str()
                .unwrap()
                .contains("carried -120.00 USD")
        );
        let text = env.ok(&["status"]);
        assert!(
            text.contains("PARTNERS MISSING FROM partners.csv")
                && text.contains("1000013")
                && text.contains("held 100.00 EUR"),
            "{text}"
        );
        // An unchanged re-run is still unchanged: the list is written once.
        assert!(
            env.ok(&["run", "--period", "2026-11"])
                .contains("unchanged")
        );

        env.ok(&["close", "--period", "2026-11"]);
        let after = balance_rows(&env).await;
        assert_eq!(kept(&after, "1000013"), kept(&before, "1000013"));
        assert_eq!(kept(&after, "1000015"), kept(&before, "1000015"));
        assert!(env.report("2026-11", "exceptions.csv").contains(lucerne));

        // Back in partners.csv (and its payment profile validated): the balance is released.
        env.write_data(
            "partners.csv",
            &std::fs::read_to_string(common::fixtures().join("partners.csv")).unwrap(),
        );
        env.replace_in_data(
            "profiles.csv",
            "1000013,complete,pending",
            "1000013,complete,validated",
        );
        env.ok(&["run", "--period", "2026-12"]);
        let payouts = env.report("2026-12", "payouts.csv");
        assert!(
            payouts.contains("1000013,Lucerne Publishing AG,csp-direct,2026-12,EUR,0.00,0.00,100.00,0.00,100.00,0.00,0.00,PAYABLE,,true,,100.00\n"),
            "{payouts}"
        );
        assert!(
            payouts.contains("1000015,Trey Research,csp-indirect,2026-12,USD,0.00,0.00,0.00,-120.00,0.00,-120.00,0.00,BELOW_THRESHOLD,,true,,0.00\n"),
            "{payouts}"
        );
        assert!(
            !env.report("2026-12", "exceptions.csv")
                .contains("PARTNER_MISSING")
        );
        let status = env.status_json();
        assert!(status["partners_missing"].as_array().unwrap().is_empty());
        assert_eq!(
            status["exceptions"]["PARTNER_MISSING"],
            serde_json::Value::Null
        );
    }
}

#[tokio::test]
async fn a_close_never_books_lines_of_a_partner_missing_from_partners_csv() {
    for backend in backends() {
        let env = Env::new(backend).await;
        env.ok(&["close", "--period", "2026-09"]);
        env.ok(&["close", "--period", "2026-10"]);
        env.write_data(
            "revenue/2026-11-billing.csv",
            "record_id,partner_id,customer_id,product_category,billing_month,amount,currency\n\
             N-1101,1000006,C-040,azure,2026-11,1500.00,USD\n\
             N-1103,1000001,C-001,m365,2026-11,1000.00,USD\n",
        );
        env.ok(&["run", "--period", "2026-11"]);
        remove_partner(&env, "1000006");
        env.ok(&["run", "--period", "2026-11"]);
        assert!(
            env.report("2026-11", "exceptions.csv").contains(
                "until it is back: held 0.00 USD, carried 57.31 USD; 1 revenue line(s) not booked (1 of the period, 0 late)\""
            ),
            "{}",
            env.report("2026-11", "exceptions.csv")
        );
        let message = refused(&env, &["close", "--period", "2026-11"]);
        assert!(
            message.contains(
                "cannot close 2026-11: partner 1000006 (1 line(s)) is not in partners.csv"
            ) && message.contains("put the partner back in partners.csv"),
            "{message}"
        );
        let status = env.status_json();
        let states: Vec<&str> = status["periods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["closed", "closed", "open"]);

        // Back in partners.csv: its November line is paid with its carried balance.
        env.write_data(
            "partners.csv",
            &std::fs::read_to_string(common::fixtures().join("partners.csv")).unwrap(),
        );
        env.ok(&["run", "--period", "2026-11"]);
        env.ok(&["close", "--period", "2026-11"]);
        let payouts = env.report("2026-11", "payouts.csv");
        assert!(
            payouts.contains("1000006,Northwind Traders,csp-direct,2026-11,USD,"),
            "{payouts}"
        );
        assert!(!payouts.contains("1000006,Northwind Traders,csp-direct,2026-11,USD,0.00,"));
    }
}

#[tokio::test]
async fn a_run_that_fails_on_master_data_is_shown_in_status() {
    for backend in backends() {
        let env = Env::new(backend).await;
        env.replace_in_data(
            "agreements.csv",
            "1000003,mpn,active,2020-01-01,",
            "1000003,mpn,active,2020-13-01,",
        );
        let output = env.payout(&["run", "--period", "2026-10"]);
        assert!(!output.status.success());
        assert!(stderr(&output).contains("agreements.csv: line 6: column `valid_from`"));
        let output = env.payout(&["close", "--period", "2026-09"]);
        assert!(!output.status.success());

        let status = env.status_json();
        let runs = status["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2, "{status}");
        for (run, command, period) in [(&runs[0], "close", "2026-09"), (&runs[1], "run", "2026-10")]
        {
            assert_eq!(run["command"], command);
            assert_eq!(run["period"], period);
            assert_eq!(run["outcome"], "failed");
            let detail = run["detail"].as_str().unwrap();
            assert!(
                detail.contains("agreements.csv: line 6: column `valid_from`")
                    && !detail.contains('\n'),
                "{detail}"
            );
        }
        let text = env.ok(&["status"]);
        let line = text
            .lines()
            .find(|l| l.contains(" run ") && l.contains("2026-10"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            line.contains("failed") && line.contains("agreements.csv: line 6: column `valid_from`"),
            "{line}"
        );
        assert!(status["periods"].as_array().unwrap().is_empty());
        assert!(!env.reports.exists());
    }
}
