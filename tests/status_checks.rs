//! The schema refuses statuses outside their enums (`domain::status`, migration 0009) on both
//! backends, and migration 0009 keeps what a database already holds: rows, foreign keys,
//! indexes and the outbox's id counter.

mod common;

use common::{Backend, Env};
use payout::domain::status::{FireStatus, OutboxKind, OutboxStatus, RunOutcome};
use payout::store::{self, Store};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

fn store_backend(backend: Backend) -> store::Backend {
    match backend {
        Backend::Sqlite => store::Backend::Sqlite,
        Backend::Postgres => store::Backend::Postgres,
    }
}

async fn insert_run(pool: &AnyPool, id: &str, outcome: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO runs (id, command, period, started_at_ms, outcome) VALUES ($1, 'run', '2026-10', 1, $2)",
    )
    .bind(id.to_owned())
    .bind(outcome.to_owned())
    .execute(pool)
    .await
    .map(drop)
}

async fn insert_fire(pool: &AnyPool, at_ms: i64, status: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO job_fires (job, scheduled_at_ms, instance, status, started_at_ms, lease_expires_at_ms, attempts) \
         VALUES ('nightly', $1, 'i', $2, 1, 2, 1)",
    )
    .bind(at_ms)
    .bind(status.to_owned())
    .execute(pool)
    .await
    .map(drop)
}

async fn insert_message(
    pool: &AnyPool,
    partner_id: &str,
    kind: &str,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (kind, partner_id, scope, recipient, recipient_name, message_id, status, created_at_ms) \
         VALUES ($1, $2, '2026-10', 'a@example.com', 'A', $3, $4, 1)",
    )
    .bind(kind.to_owned())
    .bind(partner_id.to_owned())
    .bind(format!("<{partner_id}@payout.invalid>"))
    .bind(status.to_owned())
    .execute(pool)
    .await
    .map(drop)
}

#[tokio::test]
async fn statuses_outside_their_enums_are_refused_by_both_backends() {
    for backend in common::backends() {
        let env = Env::new(backend).await;
        let store = Store::connect(&env.database_url).await.unwrap();
        let pool = store.pool();

        for (i, outcome) in RunOutcome::ALL.iter().enumerate() {
            insert_run(pool, &format!("r{i}"), outcome.as_str())
                .await
                .unwrap();
        }
        assert!(
            insert_run(pool, "bad", "done").await.is_err(),
            "{backend:?}"
        );
        assert!(
            sqlx::query("UPDATE runs SET outcome = 'Succeeded' WHERE id = 'r0'")
                .execute(pool)
                .await
                .is_err(),
            "{backend:?}: an update is checked too"
        );

        for (i, status) in FireStatus::ALL.iter().enumerate() {
            insert_fire(pool, i as i64 * 1000, status.as_str())
                .await
                .unwrap();
        }
        assert!(
            insert_fire(pool, 99_000, "paused").await.is_err(),
            "{backend:?}"
        );

        for (i, status) in OutboxStatus::ALL.iter().enumerate() {
            insert_message(pool, &format!("s{i}"), "statement", status.as_str())
                .await
                .unwrap();
        }
        for (i, kind) in OutboxKind::ALL.iter().enumerate() {
            insert_message(pool, &format!("k{i}"), kind.as_str(), "queued")
                .await
                .unwrap();
        }
        assert!(
            insert_message(pool, "x1", "statement", "delivered")
                .await
                .is_err(),
            "{backend:?}"
        );
        assert!(
            insert_message(pool, "x2", "letter", "queued")
                .await
                .is_err(),
            "{backend:?}"
        );
    }
}

/// A pool on `url` without the store's migrations (SQLite files are created).
async fn raw_pool(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    let url = if url.starts_with("sqlite:") {
        format!("{url}?mode=rwc")
    } else {
        url.to_owned()
    };
    AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(|connection, _| {
            Box::pin(async move {
                use sqlx::Executor;
                if connection.backend_name() == "SQLite" {
                    connection.execute("PRAGMA foreign_keys = ON").await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
        .unwrap()
}

#[tokio::test]
async fn migration_0009_keeps_rows_keys_indexes_and_the_outbox_counter() {
    for backend in common::backends() {
        let env = Env::new(backend).await;
        // The schema as it was before 0009, holding a little of everything 0009 rebuilds.
        let mut before = Store::migrator(store_backend(backend));
        before.migrations = before
            .migrations
            .iter()
            .filter(|m| m.version < 9)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        let pool = raw_pool(&env.database_url).await;
        before.run(&pool).await.unwrap();
        insert_run(&pool, "r1", "succeeded").await.unwrap();
        sqlx::query("UPDATE runs SET fingerprint = 'fp', detail = 'ok', finished_at_ms = 5")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO run_inputs (run_id, file, sha256) VALUES ('r1', 'partners.csv', 'abc')",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO run_warnings (run_id, seq, file, line, message) VALUES ('r1', 0, 'x.csv', 3, 'm')")
            .execute(&pool)
            .await
            .unwrap();
        insert_fire(&pool, 1000, "skipped").await.unwrap();
        insert_message(&pool, "p1", "statement", "sent")
            .await
            .unwrap();
        insert_message(&pool, "p2", "invitation", "queued")
            .await
            .unwrap();
        // The last id is gone: the next message must not take it again.
        sqlx::query("DELETE FROM outbox WHERE partner_id = 'p2'")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(
            "UPDATE outbox SET last_error = 'e', context = '{\"a\":1}' WHERE partner_id = 'p1'",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = Store::connect(&env.database_url).await.unwrap();
        let pool = store.pool();
        let run = sqlx::query(
            "SELECT outcome, fingerprint, detail, finished_at_ms FROM runs WHERE id = 'r1'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(run.get::<String, _>(0), "succeeded");
        assert_eq!(run.get::<String, _>(1), "fp");
        assert_eq!(run.get::<String, _>(2), "ok");
        assert_eq!(run.get::<i64, _>(3), 5);
        assert_eq!(
            store.run_inputs("r1").await.unwrap().len(),
            1,
            "{backend:?}"
        );
        let warnings: i64 = sqlx::query("SELECT COUNT(*) FROM run_warnings WHERE run_id = 'r1'")
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(warnings, 1);
        assert_eq!(
            store.job_fires("nightly").await.unwrap(),
            vec![(1000, "skipped".to_owned())]
        );
        let message = sqlx::query("SELECT id, kind, status, last_error, context, attempts, next_attempt_at_ms FROM outbox")
            .fetch_all(pool)
            .await
            .unwrap();
        assert_eq!(message.len(), 1);
        assert_eq!(message[0].get::<String, _>(1), "statement");
        assert_eq!(message[0].get::<String, _>(2), "sent");
        assert_eq!(message[0].get::<String, _>(3), "e");
        assert_eq!(message[0].get::<String, _>(4), "{\"a\":1}");
        assert_eq!(message[0].get::<i64, _>(5), 0);
        assert_eq!(message[0].get::<i64, _>(6), 0);
        let first_id: i64 = message[0].get(0);

        // Foreign keys still hold: no input or warning of an unknown run.
        assert!(
            sqlx::query("INSERT INTO run_inputs (run_id, file, sha256) VALUES ('nope', 'a', 'b')")
                .execute(pool)
                .await
                .is_err(),
            "{backend:?}"
        );
        assert!(
            sqlx::query(
                "INSERT INTO run_warnings (run_id, seq, file, message) VALUES ('nope', 0, 'a', 'b')"
            )
            .execute(pool)
            .await
            .is_err(),
            "{backend:?}"
        );
        // Ids go on after the deleted one, and the outbox's unique key holds.
        insert_message(pool, "p3", "statement", "queued")
            .await
            .unwrap();
        let next_id: i64 = sqlx::query("SELECT id FROM outbox WHERE partner_id = 'p3'")
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            next_id,
            first_id + 2,
            "{backend:?}: the deleted id is not reused"
        );
        assert!(
            insert_message(pool, "p1", "statement", "queued")
                .await
                .is_err()
        );

        if backend == Backend::Sqlite {
            let indexes: Vec<String> = sqlx::query(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ('outbox_deliverable', 'job_fires_running') ORDER BY name",
            )
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
            assert_eq!(indexes, ["job_fires_running", "outbox_deliverable"]);
            let leftovers: i64 = sqlx::query(
                "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%\\_new' ESCAPE '\\'",
            )
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0);
            assert_eq!(leftovers, 0);
        }
    }
}

/// `column IN ('a', 'b', …)` as migration 0009 writes it for `values`.
fn check_list(column: &str, values: impl Iterator<Item = &'static str>) -> String {
    let quoted: Vec<String> = values.map(|v| format!("'{v}'")).collect();
    format!("{column} IN ({})", quoted.join(", "))
}

#[test]
fn the_check_constraints_list_exactly_the_enums_values() {
    for sql in [
        include_str!("../migrations/sqlite/0009_status_checks.sql"),
        include_str!("../migrations/postgres/0009_status_checks.sql"),
    ] {
        for expected in [
            check_list("outcome", RunOutcome::ALL.iter().map(|s| s.as_str())),
            check_list("status", FireStatus::ALL.iter().map(|s| s.as_str())),
            check_list("status", OutboxStatus::ALL.iter().map(|s| s.as_str())),
            check_list("kind", OutboxKind::ALL.iter().map(|s| s.as_str())),
        ] {
            assert!(sql.contains(&expected), "0009 lacks `{expected}`");
        }
    }
}
