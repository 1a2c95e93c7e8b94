//! Shared set-up of the integration tests: a scratch copy of the fixtures, a fresh store on
//! each backend (SQLite file, or a new PostgreSQL database per test), and the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::Connection;

pub mod smtp;

/// Where PostgreSQL tests create their databases; set by `.ci/run` via scripts/setup-postgres.sh.
pub const POSTGRES_ENV: &str = "PAYOUT_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends to test: SQLite always, PostgreSQL when configured. In CI (`CI=true`) a missing
/// PostgreSQL is an error, never a silent skip.
pub fn backends() -> Vec<Backend> {
    let mut list = vec![Backend::Sqlite];
    if std::env::var(POSTGRES_ENV).is_ok() {
        list.push(Backend::Postgres);
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{POSTGRES_ENV} must be set in CI so that the PostgreSQL store is tested");
    } else {
        eprintln!("note: {POSTGRES_ENV} not set; PostgreSQL variant not run");
    }
    list
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub reports: PathBuf,
    pub database_url: String,
    pub backend: Backend,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn expected(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expected")
        .join(name)
}

impl Env {
    /// A scratch copy of `fixtures/` (without `late/`) and an empty store.
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        copy_dir(&fixtures(), &data);
        std::fs::remove_dir_all(data.join("late")).unwrap();
        let reports = dir.path().join("reports");
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("payout.db").display()),
            Backend::Postgres => fresh_postgres_database().await,
        };
        Self {
            dir,
            data,
            reports,
            database_url,
            backend,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_payout"));
        command
            .current_dir(self.dir.path())
            .arg("--data")
            .arg(&self.data)
            .arg("--reports")
            .arg(&self.reports)
            .arg("--database-url")
            .arg(&self.database_url)
            .args(args)
            .env_remove("PAYOUT_FAILPOINT");
        command
    }

    /// Runs the binary and returns its output, whatever the exit code.
    pub fn payout(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs the binary and fails the test unless it exits 0.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.payout(args);
        assert!(
            output.status.success(),
            "payout {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    pub fn report(&self, period: &str, file: &str) -> String {
        std::fs::read_to_string(self.reports.join(period).join(file))
            .unwrap_or_else(|e| panic!("reading {period}/{file}: {e}"))
    }

    pub fn report_bytes(&self, period: &str) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(self.reports.join(period))
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    }

    pub fn status_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).unwrap()
    }

    pub fn add_late_file(&self) {
        std::fs::copy(
            fixtures().join("late/2026-10-late-september.csv"),
            self.data.join("revenue/2026-10-late-september.csv"),
        )
        .unwrap();
    }

    pub fn write_data(&self, name: &str, text: &str) {
        std::fs::write(self.data.join(name), text).unwrap();
    }

    pub fn append_data(&self, name: &str, text: &str) {
        let mut current = std::fs::read_to_string(self.data.join(name)).unwrap();
        current.push_str(text);
        self.write_data(name, &current);
    }

    pub fn replace_in_data(&self, name: &str, from: &str, to: &str) {
        let current = std::fs::read_to_string(self.data.join(name)).unwrap();
        assert!(current.contains(from), "{name} has no `{from}`");
        self.write_data(name, &current.replace(from, to));
    }
}

/// Test databases older than this are dropped by the next test that makes one: each test's
/// database outlives it (for a look after a failure), but a reused machine must not fill up.
const KEEP_TEST_DATABASES_SECS: u64 = 30 * 60;

async fn fresh_postgres_database() -> String {
    let admin_url = std::env::var(POSTGRES_ENV).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The creation time is in the name, so any test process can tell what is stale.
    let name = format!("payout_t_{now}_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to the test PostgreSQL");
    // Not `LIKE 'payout_t_%'`: `_` matches any character there, and `payout_test` (the
    // database the URL names) would match.
    let existing: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database")
        .fetch_all(&mut admin)
        .await
        .unwrap();
    for old in existing {
        let Some(rest) = old.strip_prefix("payout_t_") else {
            continue;
        };
        let created = rest
            .split('_')
            .next()
            .and_then(|secs| secs.parse::<u64>().ok());
        // Test databases named without a time are from before this rule: stale as well.
        if created.is_none_or(|t| t + KEEP_TEST_DATABASES_SECS < now) {
            // A database still in use is refused by PostgreSQL and left alone.
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{old}\""))
                .execute(&mut admin)
                .await;
        }
    }
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&name);
    url.to_string()
}

/// Compares a report with its expected file, showing both on mismatch.
pub fn assert_report(actual: &str, expected_file: &Path) {
    let expected = std::fs::read_to_string(expected_file)
        .unwrap_or_else(|e| panic!("{}: {e}", expected_file.display()));
    assert!(
        actual == expected,
        "report differs from {}\n--- expected\n{expected}\n--- actual\n{actual}",
        expected_file.display()
    );
}

/// The CSV reports compared with hand-worked expected files.
pub const CSV_REPORTS: [&str; 4] = [
    "payouts.csv",
    "eligibility.csv",
    "exceptions.csv",
    "summary.csv",
];

/// Compares every CSV report of `period` with `tests/expected/<expected_dir>/`.
pub fn assert_reports(env: &Env, period: &str, expected_dir: &str) {
    for file in CSV_REPORTS {
        assert_report(
            &env.report(period, file),
            &expected(expected_dir).join(file),
        );
    }
}
