//! Opening the database through the real binary: a database that cannot be reached fails
//! within seconds, naming its cause once (refused, authentication, unknown host, a silent
//! server, an SQLite file that cannot be opened); and no password of a database or SMTP URL,
//! parseable or not, is ever printed or logged.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::smtp::free_port;
use common::{Backend, Env, POSTGRES_ENV};

/// "About 10 s" (the engine's deadline is 9 s), with room for a loaded machine.
const MAX_FAIL_SECS: u64 = 12;

/// `payout status` against `url` from an empty folder, with the log level `log` (`warn` is the
/// default); and how long it took.
fn status_against(url: &str, log: &str) -> (Output, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_payout"))
        .current_dir(dir.path())
        .args(["status", "--database-url", url])
        .env("PAYOUT_LOG", log)
        .env_remove("PAYOUT_DATABASE_URL")
        .output()
        .unwrap();
    (output, started.elapsed())
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Fails quickly, with a one-line reason that names `cause` once and shows no `secret`.
fn assert_fails_naming(url: &str, cause: &str, secret: &str) {
    let (output, took) = status_against(url, "warn");
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success(), "{url}: {stdout}");
    assert!(
        took < Duration::from_secs(MAX_FAIL_SECS),
        "{url}: took {took:?}: {stderr}"
    );
    assert_eq!(
        stderr.matches(cause).count(),
        1,
        "{url}: the cause `{cause}` once: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{url}: one line: {stderr}");
    assert!(
        !stderr.contains(secret) && !stdout.contains(secret),
        "{url}: the password is shown: {stderr}"
    );
}

#[test]
fn a_refused_connection_fails_at_once_naming_it() {
    let url = format!(
        "postgres://payout:Refused-S3cret@127.0.0.1:{}/payout",
        free_port()
    );
    assert_fails_naming(&url, "connection refused", "Refused-S3cret");
}

#[test]
fn an_unknown_host_is_named() {
    assert_fails_naming(
        "postgres://u:Host-S3cret@no-such-host.invalid/db",
        "unknown host `no-such-host.invalid`",
        "Host-S3cret",
    );
}

#[test]
fn an_sqlite_file_that_cannot_be_opened_is_reported_once() {
    assert_fails_naming(
        "sqlite:///nonexistent-dir/x.db",
        "unable to open database file",
        "no secret here",
    );
    let (output, _) = status_against("sqlite:///nonexistent-dir/x.db", "warn");
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains("cannot open the SQLite file /nonexistent-dir/x.db")
            && stderr.contains("the folder /nonexistent-dir does not exist"),
        "{stderr}"
    );
}

#[test]
fn an_sqlite_file_that_cannot_be_set_up_is_reported_not_retried() {
    // Read-only: the connection opens, but switching it to WAL fails; the pool would retry that
    // set-up until it timed out.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payout.db");
    std::fs::write(&path, b"").unwrap(); // an empty file is an empty SQLite database
    assert_fails_naming(
        &format!("sqlite://{}?mode=ro", path.display()),
        "readonly database",
        "no secret here",
    );
}

#[test]
fn a_server_that_never_answers_is_given_up_on_within_seconds() {
    // Accepts connections and never says a word, as a blackholed server would look.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let url = format!("postgres://payout:Silent-S3cret@127.0.0.1:{port}/payout");
    assert_fails_naming(&url, "no answer from 127.0.0.1", "Silent-S3cret");
}

#[test]
fn a_wrong_password_is_reported_as_an_authentication_failure() {
    let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
        eprintln!("note: {POSTGRES_ENV} not set; authentication failure not tested");
        return;
    };
    let mut url = url::Url::parse(&admin_url).unwrap();
    let user = url.username().to_owned();
    url.set_password(Some("Wr0ng-S3cret")).unwrap();
    assert_fails_naming(
        url.as_str(),
        &format!("authentication failed for user `{user}`"),
        "Wr0ng-S3cret",
    );
}

/// A password that appears nowhere else in any output.
const SECRET: &str = "Zq8-S3cr";

#[test]
fn no_database_password_is_printed_or_logged_parseable_or_not() {
    let port = free_port();
    let forms = [
        format!("postgres://payout:{SECRET}#x@127.0.0.1:{port}/payout"), // does not parse
        format!("postgres://payout:{SECRET}/@x@127.0.0.1:{port}/payout"), // does not parse
        format!("postgres://payout:{SECRET}@127.0.0.1:{port}/payout"),
        format!("postgres://payout@127.0.0.1:{port}/payout?password={SECRET}"),
        format!("postgres://payout@127.0.0.1:{port}/payout?sslmode=disable&pwd={SECRET}"),
        format!("postgres://payout@127.0.0.1:{port}/payout?sslpassword={SECRET}&pass={SECRET}"),
        format!("postgres://payout@127.0.0.1:{port}/payout?PASSWORD={SECRET}"),
        format!("postgresql://payout:{SECRET}@no-such-host.invalid/payout"),
        format!("mysql://root:{SECRET}@127.0.0.1/payout"),
    ];
    for (url, log) in forms
        .iter()
        .flat_map(|url| ["warn", "debug", "trace"].map(|log| (url, log)))
    {
        let (output, _) = status_against(url, log);
        let (stdout, stderr) = text(&output);
        assert!(!output.status.success(), "{url}");
        assert!(
            !stdout.contains(SECRET) && !stderr.contains(SECRET),
            "{url}: {stdout}{stderr}"
        );
        assert!(
            stderr.contains("***") || stderr.contains("scheme `mysql`"),
            "{url}: {stderr}"
        );
    }
}

#[tokio::test]
async fn no_smtp_password_is_printed_or_logged() {
    let env = Env::new(Backend::Sqlite).await;
    env.ok(&["close", "--period", "2026-09"]);
    let port = free_port();
    for url in [
        format!("smtp://mailer:{SECRET}#x@127.0.0.1:{port}"), // does not parse
        format!("smtp://mailer:{SECRET}@127.0.0.1:{port}"),
        format!("smtps://mailer:{SECRET}@127.0.0.1:{port}"),
        format!("smtp://127.0.0.1:{port}?password={SECRET}"),
    ] {
        for format in ["human", "json"] {
            let output = env
                .command(&["send", "--smtp-url", &url, "--max-retry-wait-secs", "0"])
                .env("PAYOUT_LOG", "debug")
                .env("PAYOUT_LOG_FORMAT", format)
                .output()
                .unwrap();
            let (stdout, stderr) = text(&output);
            assert!(
                !stdout.contains(SECRET) && !stderr.contains(SECRET),
                "{url}: {stdout}{stderr}"
            );
        }
    }
    assert_eq!(
        env.status_json()["outbox"]["queued"],
        6,
        "nothing was lost on the way"
    );
}

/// After each command the SQLite file alone is the whole store: its write-ahead log is
/// checkpointed and removed when the command ends, so a copy of `payout.db` is a backup.
#[tokio::test]
async fn after_a_command_the_sqlite_file_alone_holds_the_store() {
    let env = Env::new(Backend::Sqlite).await;
    let db = env.dir.path().join("payout.db");
    let wal = env.dir.path().join("payout.db-wal");
    for args in [
        &["run", "--period", "2026-09"][..],
        &["close", "--period", "2026-09"][..],
        &["send", "--max-retry-wait-secs", "0"][..],
    ] {
        env.ok(args);
        assert!(!wal.exists(), "{args:?} left {}", wal.display());
    }
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(&db, copy.path().join("payout.db")).unwrap();
    let (output, _) = status_against(
        &format!("sqlite://{}", copy.path().join("payout.db").display()),
        "warn",
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("2026-09"),
        "the copy holds the close: {stdout}"
    );
}
