//! Email recovery through the real binary and a real SMTP server, on both backends: a store
//! error while composing a message leaves it queued for a retry; `payout resend` queues a
//! closed statement once to each new recipient after an address is corrected, records it and
//! lists it in `status`, and refuses what it cannot resend.

mod common;

use std::collections::BTreeSet;

use common::smtp::{SmtpSink, header};
use common::{Env, backends};
use sqlx::Connection;

async fn execute_sql(env: &Env, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(&env.database_url)
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut connection).await.unwrap();
    connection.close().await.unwrap();
}

async fn count_sql(env: &Env, sql: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(&env.database_url)
        .await
        .unwrap();
    let count: i64 = sqlx::Row::try_get(
        &sqlx::query(sql).fetch_one(&mut connection).await.unwrap(),
        0,
    )
    .unwrap();
    connection.close().await.unwrap();
    count
}

/// `payout send`, first retry after `retry_base_ms`, waiting at most `max_retry_wait_secs`
/// for retries that fall due.
fn send_with(
    env: &Env,
    url: &str,
    retry_base_ms: &str,
    max_retry_wait_secs: &str,
) -> std::process::Output {
    env.payout(&[
        "send",
        "--smtp-url",
        url,
        "--retry-base-ms",
        retry_base_ms,
        "--max-retry-wait-secs",
        max_retry_wait_secs,
    ])
}

fn send(env: &Env, url: &str) -> std::process::Output {
    send_with(env, url, "20", "20")
}

fn outbox(env: &Env, status: &str) -> u64 {
    env.status_json()["outbox"][status].as_u64().unwrap_or(0)
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_store_error_while_composing_is_retried_not_failed() {
    for backend in backends() {
        let env = Env::new(backend).await;
        env.ok(&["close", "--period", "2026-09"]);
        let sink = SmtpSink::start();
        // The statements cannot be read back from the store for a while.
        execute_sql(
            &env,
            "ALTER TABLE statement_lines RENAME TO statement_lines_away",
        )
        .await;
        // A retry not due before this send returns: each row is tried once.
        let output = send_with(&env, &sink.url(), "2000", "0");
        assert!(output.status.success(), "{}", stderr_of(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("failed 0, retried 6, still queued 6"),
            "{stdout}"
        );
        assert_eq!(
            outbox(&env, "queued"),
            6,
            "every row stays queued ({backend:?})"
        );
        assert_eq!(outbox(&env, "failed"), 0);
        assert_eq!(
            count_sql(
                &env,
                "SELECT COUNT(*) FROM outbox WHERE attempts = 1 AND last_error LIKE '%loading the statement%'"
            )
            .await,
            6,
            "the attempt and its cause are recorded"
        );
        assert!(sink.messages().is_empty());

        execute_sql(
            &env,
            "ALTER TABLE statement_lines_away RENAME TO statement_lines",
        )
        .await;
        let output = send(&env, &sink.url());
        assert!(output.status.success(), "{}", stderr_of(&output));
        assert_eq!(sink.messages().len(), 6, "delivered once the store reads");
        assert_eq!(outbox(&env, "sent"), 6);
    }
}

fn resend(env: &Env, period: &str, partner: &str) -> std::process::Output {
    env.command(&["resend", "--period", period, "--partner", partner])
        .env("USER", "jo.finance")
        .output()
        .unwrap()
}

fn resend_ok(env: &Env, period: &str, partner: &str) -> String {
    let output = resend(env, period, partner);
    assert!(output.status.success(), "{}", stderr_of(&output));
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn resend_queues_a_closed_statement_once_to_each_new_recipient() {
    for backend in backends() {
        let env = Env::new(backend).await;
        env.ok(&["close", "--period", "2026-09"]);
        env.ok(&["close", "--period", "2026-10"]);
        let sink = SmtpSink::start();
        assert!(send(&env, &sink.url()).status.success());
        let delivered = sink.messages().len();
        let sent = outbox(&env, "sent");
        assert_eq!(outbox(&env, "queued"), 0);

        // Finance corrects Dana Lee's address in the master data.
        env.replace_in_data(
            "users.csv",
            "dana.lee@contoso.example",
            "dana.lee@contoso-cloud.example",
        );
        let first = resend_ok(&env, "2026-10", "1000001");
        assert_eq!(
            first.trim(),
            "2026-10: statement of partner 1000001 queued to 1 new recipient(s) (dana.lee@contoso-cloud.example); 1 current recipient(s) already had it",
            "({backend:?})"
        );
        assert_eq!(outbox(&env, "queued"), 1, "exactly one new outbox row");

        // Again, and with the address written in capitals: nothing new.
        let again = resend_ok(&env, "2026-10", "1000001");
        assert!(again.contains("nothing queued"), "{again}");
        env.replace_in_data(
            "users.csv",
            "dana.lee@contoso-cloud.example",
            "Dana.Lee@Contoso-Cloud.example",
        );
        assert!(resend_ok(&env, "2026-10", "1000001").contains("nothing queued"));
        assert_eq!(outbox(&env, "queued"), 1);

        // Recorded: who, when, how many; in JSON and in the text status.
        let status = env.status_json();
        let resends = status["resends"].as_array().unwrap();
        assert_eq!(resends.len(), 3);
        let oldest = &resends[2];
        assert_eq!(oldest["period"], "2026-10");
        assert_eq!(oldest["partner_id"], "1000001");
        assert_eq!(oldest["requested_by"], "jo.finance");
        assert_eq!(oldest["queued"], 1);
        assert_eq!(oldest["already_had"], 1);
        assert_eq!(
            oldest["recipients"],
            serde_json::json!(["dana.lee@contoso-cloud.example"])
        );
        assert!(oldest["requested_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(resends[0]["queued"], 0);
        let text = env.ok(&["status"]);
        assert!(
            text.contains("RESENDS") && text.contains("2026-10 partner 1000001 by jo.finance: 1 queued (dana.lee@contoso-cloud.example), 1 already had it"),
            "{text}"
        );

        // Delivered once, with the closed statement.
        for _ in 0..2 {
            let output = send(&env, &sink.url());
            assert!(output.status.success(), "{}", stderr_of(&output));
        }
        let messages = sink.messages();
        assert_eq!(messages.len(), delivered + 1, "({backend:?})");
        assert_eq!(outbox(&env, "sent"), sent + 1);
        let resent: Vec<&String> = messages
            .iter()
            .filter(|m| header(m, "X-Envelope-To").unwrap() == "dana.lee@contoso-cloud.example")
            .collect();
        assert_eq!(resent.len(), 1);
        assert!(header(resent[0], "Subject").unwrap().contains("2026-10"));
        assert!(resent[0].contains("Content-Type: application/pdf"));
        let ids: BTreeSet<String> = messages
            .iter()
            .map(|m| header(m, "Message-ID").unwrap())
            .collect();
        assert_eq!(ids.len(), messages.len(), "a new message, not a copy");
    }
}

#[tokio::test]
async fn resend_refuses_an_open_period_and_a_partner_without_a_statement() {
    for backend in backends() {
        let env = Env::new(backend).await;
        let refused = |period: &str, partner: &str, reason: &str| {
            let output = resend(&env, period, partner);
            let stderr = stderr_of(&output);
            assert!(!output.status.success(), "{period} {partner}");
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
            assert!(stderr.contains(reason), "{stderr}");
        };
        refused("2026-09", "1000001", "period 2026-09 is not closed");
        env.ok(&["close", "--period", "2026-09"]);
        // No revenue and no balance: no statement in 2026-09.
        refused(
            "2026-09",
            "1000020",
            "partner 1000020 has no statement for 2026-09",
        );
        refused("2026-09", "9999999", "partner 9999999 has no statement");
        let output = resend(&env, "2026-09", "10000x1");
        assert!(!output.status.success());
        assert!(stderr_of(&output).contains("is not a partner id"));
        let status = env.status_json();
        assert_eq!(status["resends"], serde_json::json!([]), "({backend:?})");
        assert_eq!(status["outbox"]["queued"], 6);
    }
}
