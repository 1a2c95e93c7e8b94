//! The store: runs, ingested files, revenue segments, rejections, closes, statements,
//! balances, the outbox and leases. One `Store` over sqlx's `Any` driver, with SQLite (the
//! embedded default) and PostgreSQL backends, each with its own migrations. Every state change
//! of a run is one transaction. Money is TEXT decimal, never a float.

mod connect;
mod jobs;
mod lease;
mod outbox;
mod redact;
mod resend;
mod status;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub use connect::{CONNECT_DEADLINE, ConnectFailure};
pub use jobs::{FireClaim, FireKey, JobRecord, RecordedJobFileError};
pub use lease::Lease;
pub use outbox::{ClaimedMessage, DeliveryOutcome, WaveProgress};
pub use redact::{redact_url, url_scheme};
pub use resend::{ResendOutcome, ResendRequest, ResendStatus};
pub use status::{DraftRecord, JobFileErrorStatus, JobStatus, StatusReport, render_status};

use crate::domain::money::Currency;
use crate::domain::period::Period;
use crate::domain::reasons::RejectReason;
use crate::earnings::StoredBalance;
use crate::ingest::master::InputFile;
use crate::ingest::read::{FileIngest, Rejection};
use crate::ingest::record_index::RecordIndex;
use crate::ingest::retry::{PendingRow, RetryResolution};
use crate::ingest::segment::Segment;
use crate::ingest::warning::Warning;
use crate::ledger::Balances;
use crate::notify::statement::StatementRecord;

/// Rows per multi-row INSERT: well under SQLite's 32,766 and PostgreSQL's 65,535 parameters.
const INSERT_BATCH_ROWS: usize = 200;
/// How long SQLite waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 60_000;
/// Connections per process: one writer at a time is all the engine needs, plus readers.
const MAX_CONNECTIONS: u32 = 4;
/// The `source_file` of a `PARTNER_MISSING` exception: the file the partner is missing from.
pub const MISSING_PARTNER_SOURCE: &str = "partners.csv";
/// How long a task waits for one of the pool's connections once the database is known to be
/// reachable: longer than `SQLITE_BUSY_TIMEOUT_MS`, since a connection waiting for SQLite's
/// write lock keeps its slot that long.
const POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The cause is shown once, in the message (not also as a chained source).
    #[error("database {url}: {failure}")]
    Connect {
        url: String,
        failure: ConnectFailure,
    },
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// Only the scheme is shown: the layout of an unknown URL, and where its secrets are, is
    /// unknown.
    #[error("unsupported database URL scheme `{0}` (expected sqlite://… or postgres://…)")]
    UnsupportedUrl(String),
    #[error("{0}")]
    Busy(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Run on every SQLite connection (and by the first one, so that a failure is reported
/// rather than retried by the pool until it times out).
fn sqlite_pragmas() -> String {
    format!(
        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
    )
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A value bound into a multi-row INSERT.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

/// One open rejection, as `exceptions.csv` lists it (SPEC §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionRow {
    pub source_file: String,
    pub line: Option<u64>,
    pub record_id: String,
    pub reason: String,
    pub detail: String,
    pub raw: String,
}

/// A stored segment selected for a period's computation.
pub struct StoredSegment {
    pub id: i64,
    pub late_unbooked: bool,
}

/// What a close transaction found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseOutcome {
    Closed,
    AlreadyClosed,
    /// Another close changed the basis since the computation; compute again.
    BasisChanged,
}

/// An email to queue (delivered by `payout send`). Its key, (kind, partner, scope,
/// recipient), is unique in the outbox: queueing it twice is a no-op.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub kind: &'static str,
    pub partner_id: String,
    pub scope: String,
    pub recipient: String,
    pub recipient_name: String,
    /// What the template needs beyond the stored statement (partner name, wave, …).
    pub context: serde_json::Value,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects, creating an SQLite file on first use, and applies migrations. A database that
    /// cannot be reached fails within `CONNECT_DEADLINE` with its cause (`connect`).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url_scheme(url).to_owned()));
        };
        let connect_url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_owned(),
        };
        let failed = |failure| StoreError::Connect {
            url: redact_url(url),
            failure,
        };
        // One explicit connection first: its failure names the cause, where the pool would
        // retry a refused connection until it timed out.
        match backend {
            Backend::Sqlite => {
                connect::probe_sqlite(
                    &connect_url,
                    Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS),
                    &sqlite_pragmas(),
                )
                .await
            }
            Backend::Postgres => connect::probe_postgres(&connect_url).await,
        }
        .map_err(failed)?;
        let mut options = AnyPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(POOL_ACQUIRE_TIMEOUT);
        if backend == Backend::Sqlite {
            options = options.after_connect(|connection, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    connection.execute(sqlite_pragmas().as_str()).await?;
                    Ok(())
                })
            });
        }
        let pool = match backend {
            // Local: opening waits for SQLite's write lock like any statement.
            Backend::Sqlite => options.connect(&connect_url).await,
            // Reachable a moment ago; should it stop answering now, give up as quickly.
            Backend::Postgres => {
                tokio::time::timeout(CONNECT_DEADLINE, options.connect(&connect_url))
                    .await
                    .unwrap_or(Err(sqlx::Error::PoolTimedOut))
            }
        }
        .map_err(|e| {
            failed(ConnectFailure::Other {
                reason: format!("opening the connection pool: {e}"),
            })
        })?;
        let store = Self { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        // Two processes migrating a fresh SQLite file at once: the loser retries once the
        // winner's schema is in place.
        match migrator.run(&self.pool).await {
            Ok(()) => Ok(()),
            Err(_) if self.backend == Backend::Sqlite => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok(migrator.run(&self.pool).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Multi-row INSERT of `rows` into `table`, in batches, inside `tx`.
    async fn insert_rows(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        table: &str,
        columns: &[&str],
        rows: Vec<Vec<Arg>>,
    ) -> StoreResult<u64> {
        Self::insert_rows_with(tx, table, columns, rows, "").await
    }

    /// Multi-row INSERT with a trailing clause (`ON CONFLICT … DO NOTHING`); returns the number
    /// of rows inserted.
    async fn insert_rows_with(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        table: &str,
        columns: &[&str],
        rows: Vec<Vec<Arg>>,
        suffix: &str,
    ) -> StoreResult<u64> {
        let mut inserted = 0;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let batch: Vec<Vec<Arg>> = rows.by_ref().take(INSERT_BATCH_ROWS).collect();
            let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
            let mut n = 0;
            for (i, _) in batch.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for c in 0..columns.len() {
                    n += 1;
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("${n}"));
                }
                sql.push(')');
            }
            sql.push(' ');
            sql.push_str(suffix);
            let mut query = sqlx::query(&sql);
            for arg in batch.into_iter().flatten() {
                query = match arg {
                    Arg::Text(v) => query.bind(v),
                    Arg::OptText(v) => query.bind(v),
                    Arg::Int(v) => query.bind(v),
                    Arg::OptInt(v) => query.bind(v),
                };
            }
            inserted += query.execute(&mut **tx).await?.rows_affected();
        }
        Ok(inserted)
    }

    // ---- runs -------------------------------------------------------------------------

    pub async fn start_run(&self, command: &str, period: Option<Period>) -> StoreResult<String> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO runs (id, command, period, started_at_ms, outcome) VALUES ($1, $2, $3, $4, 'running')")
            .bind(id.clone())
            .bind(command.to_owned())
            .bind(period.map(|p| p.to_string()))
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    pub async fn record_inputs(&self, run_id: &str, inputs: &[InputFile]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let rows = inputs
            .iter()
            .map(|f| {
                vec![
                    Arg::Text(run_id.to_owned()),
                    Arg::Text(f.name.clone()),
                    Arg::Text(f.sha256.clone()),
                ]
            })
            .collect();
        Self::insert_rows(&mut tx, "run_inputs", &["run_id", "file", "sha256"], rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores the run's warnings (already bounded by `warning::MAX_WARNINGS`), in order.
    pub async fn record_warnings(&self, run_id: &str, warnings: &[Warning]) -> StoreResult<()> {
        if warnings.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let rows = warnings
            .iter()
            .enumerate()
            .map(|(seq, w)| {
                vec![
                    Arg::Text(run_id.to_owned()),
                    Arg::Int(seq as i64),
                    Arg::Text(w.file.clone()),
                    Arg::OptInt(w.line.map(|l| l as i64)),
                    Arg::Text(w.message.clone()),
                ]
            })
            .collect();
        Self::insert_rows(
            &mut tx,
            "run_warnings",
            &["run_id", "seq", "file", "line", "message"],
            rows,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn finish_run(&self, run_id: &str, outcome: &str, detail: &str) -> StoreResult<()> {
        sqlx::query("UPDATE runs SET finished_at_ms = $1, outcome = $2, detail = $3 WHERE id = $4")
            .bind(now_ms())
            .bind(outcome.to_owned())
            .bind(detail.to_owned())
            .bind(run_id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- ingest -----------------------------------------------------------------------

    pub async fn ingested_file_hashes(&self) -> StoreResult<HashSet<String>> {
        let rows = sqlx::query("SELECT sha256 FROM revenue_files")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>(0)?))
            .collect()
    }

    /// The keys of every ingested line, for duplicate checks.
    pub async fn record_index(&self) -> StoreResult<RecordIndex> {
        let total: i64 =
            sqlx::query("SELECT CAST(COALESCE(SUM(rows), 0) AS BIGINT) FROM revenue_segments")
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
        let mut index = RecordIndex::with_capacity(total as usize);
        // A few segments' keys at a time, so memory holds the index, not also its blobs.
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(
                "SELECT id, record_keys FROM revenue_segments WHERE id > $1 ORDER BY id LIMIT 8",
            )
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = last.try_get(0)?;
            let blobs = rows
                .iter()
                .map(|row| row.try_get::<Vec<u8>, _>(1))
                .collect::<Result<Vec<_>, _>>()?;
            index.extend_from_blobs(&blobs);
        }
        Ok(index)
    }

    /// Open rejections whose reason is retried (`RejectReason::is_retried`), in file order.
    pub async fn pending_retries(&self) -> StoreResult<Vec<PendingRow>> {
        let retried: Vec<String> = RejectReason::ALL
            .iter()
            .filter(|r| r.is_retried())
            .map(|r| format!("'{}'", r.code()))
            .collect();
        let sql = format!(
            "SELECT id, source_file, line, fields, reason FROM rejections \
             WHERE status = 'open' AND reason IN ({}) ORDER BY source_file, line, id",
            retried.join(", ")
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let fields_json: Option<String> = row.try_get(3)?;
                let fields: Vec<String> =
                    serde_json::from_str(fields_json.as_deref().unwrap_or("[]"))
                        .map_err(|e| StoreError::Corrupt(format!("rejection fields: {e}")))?;
                let fields: [String; 7] = fields
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("rejection without seven fields".into()))?;
                let reason: String = row.try_get(4)?;
                Ok(PendingRow {
                    rejection_id: row.try_get(0)?,
                    source_file: row.try_get(1)?,
                    line: row.try_get::<Option<i64>, _>(2)?.unwrap_or(0) as u64,
                    fields,
                    reason: RejectReason::from_code(&reason)
                        .ok_or_else(|| StoreError::Corrupt(format!("reason {reason}")))?,
                })
            })
            .collect()
    }

    async fn insert_segments(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        origin: &str,
        segments: Vec<Segment>,
    ) -> StoreResult<()> {
        for segment in segments {
            let row = sqlx::query(
                "INSERT INTO revenue_segments (origin, rows, late_rows, data, record_keys) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(origin.to_owned())
            .bind(segment.rows as i64)
            .bind(segment.late_rows as i64)
            .bind(segment.parquet)
            .bind(segment.keys)
            .fetch_one(&mut **tx)
            .await?;
            let id: i64 = row.try_get(0)?;
            let months = segment
                .months
                .iter()
                .map(|(month, late, rows)| {
                    vec![
                        Arg::Int(id),
                        Arg::Text(month.to_string()),
                        Arg::Int(i64::from(*late)),
                        Arg::Int(*rows as i64),
                    ]
                })
                .collect();
            Self::insert_rows(
                tx,
                "segment_months",
                &["segment_id", "billing_month", "late", "rows"],
                months,
            )
            .await?;
        }
        Ok(())
    }

    async fn insert_rejections(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        run_id: &str,
        file_sha256: &str,
        rejections: Vec<Rejection>,
    ) -> StoreResult<()> {
        let rows = rejections
            .into_iter()
            .map(|r| {
                let fields = r
                    .fields
                    .as_ref()
                    .map(|f| serde_json::to_string(f).unwrap_or_default());
                vec![
                    Arg::Text(r.source_file),
                    Arg::Text(file_sha256.to_owned()),
                    Arg::OptInt(r.line.map(|l| l as i64)),
                    Arg::Text(r.record_id),
                    Arg::Text(r.reason.code().to_owned()),
                    Arg::Text(r.detail),
                    Arg::Text(r.raw),
                    Arg::OptText(fields),
                    Arg::Text("open".into()),
                    Arg::Text(run_id.to_owned()),
                ]
            })
            .collect();
        Self::insert_rows(
            tx,
            "rejections",
            &[
                "source_file",
                "file_sha256",
                "line",
                "record_id",
                "reason",
                "detail",
                "raw",
                "fields",
                "status",
                "run_id",
            ],
            rows,
        )
        .await?;
        Ok(())
    }

    /// Starts storing an ingested revenue file: its segments go in as ingest makes them and
    /// the whole file commits at once (`FileWriter::finish`). `None` if the file is already
    /// stored (by another instance meanwhile).
    pub async fn begin_file(
        &self,
        run_id: &str,
        source_file: &str,
        sha256: &str,
    ) -> StoreResult<Option<FileWriter>> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO revenue_files (sha256, source_file, run_id, ingested_at_ms, status, rows_total, rows_accepted, rows_rejected, rows_duplicate) \
             VALUES ($1, $2, $3, $4, 'ingested', 0, 0, 0, 0) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256.to_owned())
        .bind(source_file.to_owned())
        .bind(run_id.to_owned())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        Ok(Some(FileWriter {
            tx,
            run_id: run_id.to_owned(),
            sha256: sha256.to_owned(),
        }))
    }

    /// Stores the retried rows' segments and resolutions in one transaction.
    pub async fn store_retry(
        &self,
        run_id: &str,
        segments: Vec<Segment>,
        resolutions: &[(i64, RetryResolution)],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        Self::insert_segments(&mut tx, &format!("retry:{run_id}"), segments).await?;
        for (id, resolution) in resolutions {
            match resolution {
                RetryResolution::Resolved => {
                    sqlx::query("UPDATE rejections SET status = 'resolved', resolved_run_id = $1 WHERE id = $2")
                        .bind(run_id.to_owned())
                        .bind(*id)
                        .execute(&mut *tx)
                        .await?;
                }
                RetryResolution::StillRejected(reason, detail) => {
                    sqlx::query("UPDATE rejections SET reason = $1, detail = $2 WHERE id = $3 AND (reason <> $1 OR detail <> $2)")
                        .bind(reason.code().to_owned())
                        .bind(detail.clone())
                        .bind(*id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every rejection still open, in report order (SPEC §7.1).
    pub async fn open_exceptions(&self) -> StoreResult<Vec<ExceptionRow>> {
        let rows = sqlx::query(
            "SELECT source_file, line, record_id, reason, detail, raw FROM rejections WHERE status = 'open' \
             ORDER BY source_file, line, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ExceptionRow {
                    source_file: row.try_get(0)?,
                    line: row.try_get::<Option<i64>, _>(1)?.map(|l| l as u64),
                    record_id: row.try_get(2)?,
                    reason: row.try_get(3)?,
                    detail: row.try_get(4)?,
                    raw: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// Replaces the open `PARTNER_MISSING` rows by `missing` ((partner id, detail), in partner
    /// order), in one transaction, found by `run_id` in the partners.csv of `partners_sha256`.
    /// Nothing is written when they are the same, so an unchanged re-run leaves the store as
    /// it is; a partner that is back leaves the list. Returns whether anything changed.
    pub async fn sync_missing_partners(
        &self,
        run_id: &str,
        partners_sha256: &str,
        missing: &[(String, String)],
    ) -> StoreResult<bool> {
        let reason = RejectReason::PartnerMissing.code();
        let mut tx = self.pool.begin().await?;
        let open: Vec<String> = sqlx::query(
            "SELECT detail FROM rejections WHERE status = 'open' AND reason = $1 ORDER BY id",
        )
        .bind(reason.to_owned())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
        if open.iter().eq(missing.iter().map(|(_, detail)| detail)) {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE rejections SET status = 'resolved', resolved_run_id = $1 WHERE status = 'open' AND reason = $2",
        )
        .bind(run_id.to_owned())
        .bind(reason.to_owned())
        .execute(&mut *tx)
        .await?;
        let rows = missing
            .iter()
            .map(|(partner_id, detail)| {
                vec![
                    Arg::Text(MISSING_PARTNER_SOURCE.to_owned()),
                    Arg::Text(partners_sha256.to_owned()),
                    Arg::OptInt(None),
                    Arg::Text(String::new()),
                    Arg::Text(reason.to_owned()),
                    Arg::Text(detail.clone()),
                    Arg::Text(String::new()),
                    // The partner, for `status` (record_id stays empty: no revenue row is meant).
                    Arg::OptText(Some(
                        serde_json::json!({ "partner_id": partner_id }).to_string(),
                    )),
                    Arg::Text("open".into()),
                    Arg::Text(run_id.to_owned()),
                ]
            })
            .collect();
        Self::insert_rows(
            &mut tx,
            "rejections",
            &[
                "source_file",
                "file_sha256",
                "line",
                "record_id",
                "reason",
                "detail",
                "raw",
                "fields",
                "status",
                "run_id",
            ],
            rows,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    // ---- periods ----------------------------------------------------------------------

    pub async fn last_closed(&self) -> StoreResult<Option<Period>> {
        let row = sqlx::query("SELECT MAX(period) FROM period_closes")
            .fetch_one(&self.pool)
            .await?;
        parse_period_opt(row.try_get::<Option<String>, _>(0)?)
    }

    pub async fn close_id(&self, period: Period) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT close_id FROM period_closes WHERE period = $1")
            .bind(period.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// The earliest open month before `period` that has revenue lines of its own.
    pub async fn earlier_open_revenue(
        &self,
        last_closed: Option<Period>,
        period: Period,
    ) -> StoreResult<Option<Period>> {
        let floor = last_closed.map_or_else(|| "0000-00".to_owned(), |p| p.to_string());
        let row = sqlx::query("SELECT MIN(billing_month) FROM segment_months WHERE late = 0 AND billing_month > $1 AND billing_month < $2")
            .bind(floor)
            .bind(period.to_string())
            .fetch_one(&self.pool)
            .await?;
        parse_period_opt(row.try_get::<Option<String>, _>(0)?)
    }

    /// Segments holding lines of `period` itself, or late lines not yet booked: their ids and
    /// whether their late lines are unbooked. The data is fetched one segment at a time.
    pub async fn segments_for(&self, period: Period) -> StoreResult<Vec<StoredSegment>> {
        let rows = sqlx::query(
            "SELECT id, booked_period FROM revenue_segments WHERE id IN \
             (SELECT segment_id FROM segment_months WHERE billing_month = $1 AND late = 0) \
             OR (late_rows > 0 AND booked_period IS NULL) ORDER BY id",
        )
        .bind(period.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row: &AnyRow| {
                Ok(StoredSegment {
                    id: row.try_get(0)?,
                    late_unbooked: row.try_get::<Option<String>, _>(1)?.is_none(),
                })
            })
            .collect()
    }

    /// The Parquet bytes of one segment.
    pub async fn segment_data(&self, id: i64) -> StoreResult<Vec<u8>> {
        let row = sqlx::query("SELECT data FROM revenue_segments WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    pub async fn balances(&self) -> StoreResult<HashMap<String, StoredBalance>> {
        let rows = sqlx::query("SELECT partner_id, currency, held, carried FROM balances")
            .fetch_all(&self.pool)
            .await?;
        let mut balances = HashMap::new();
        for row in rows {
            let partner_id: String = row.try_get(0)?;
            let code: String = row.try_get(1)?;
            let currency = Currency::parse(&code)
                .ok_or_else(|| StoreError::Corrupt(format!("balance currency {code}")))?;
            let held = parse_decimal(row.try_get(2)?)?;
            let carried = parse_decimal(row.try_get(3)?)?;
            balances.insert(
                partner_id,
                StoredBalance {
                    currency,
                    balances: Balances { held, carried },
                },
            );
        }
        Ok(balances)
    }

    /// Closes `period` in one transaction: the close record, statements, balance movements,
    /// booking of late lines and the statement emails (SPEC §4).
    pub async fn close_period(&self, close: ClosePlan<'_>) -> StoreResult<CloseOutcome> {
        let mut tx = self.pool.begin().await?;
        let period = close.period.to_string();
        let inserted = sqlx::query(
            "INSERT INTO period_closes (period, close_id, run_id, closed_at_ms, basis_period) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (period) DO NOTHING",
        )
        .bind(period.clone())
        .bind(close.close_id.to_owned())
        .bind(close.run_id.to_owned())
        .bind(now_ms())
        .bind(close.basis.map(|p| p.to_string()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(CloseOutcome::AlreadyClosed);
        }
        let row = sqlx::query("SELECT MAX(period) FROM period_closes WHERE period <> $1")
            .bind(period.clone())
            .fetch_one(&mut *tx)
            .await?;
        let basis_now = parse_period_opt(row.try_get::<Option<String>, _>(0)?)?;
        if basis_now != close.basis {
            tx.rollback().await?;
            return Ok(if basis_now.is_some_and(|b| b >= close.period) {
                CloseOutcome::AlreadyClosed
            } else {
                CloseOutcome::BasisChanged
            });
        }

        let mut statements = Vec::new();
        let mut lines = Vec::new();
        for record in close.statements {
            let text = |v: &String| Arg::Text(v.clone());
            statements.push(vec![
                text(&period),
                text(&record.partner_id),
                text(&record.partner_name),
                text(&record.program_id),
                text(&record.program_name),
                text(&record.language),
                text(&record.currency),
                text(&record.earned),
                text(&record.adjustments),
                text(&record.released),
                text(&record.carried_in),
                text(&record.payable),
                text(&record.carried),
                text(&record.held),
                text(&record.status),
                text(&record.hold_reasons),
            ]);
            for (position, line) in record.lines.iter().enumerate() {
                lines.push(vec![
                    text(&period),
                    text(&record.partner_id),
                    Arg::Int(position as i64),
                    text(&line.booking),
                    text(&line.product_category),
                    text(&line.line_currency),
                    Arg::OptText(line.rate.clone()),
                    Arg::Int(line.lines),
                    text(&line.revenue),
                    text(&line.earning),
                ]);
            }
            sqlx::query(
                "INSERT INTO balances (partner_id, currency, held, carried, period) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (partner_id) DO UPDATE SET currency = excluded.currency, held = excluded.held, \
                 carried = excluded.carried, period = excluded.period",
            )
            .bind(record.partner_id.clone())
            .bind(record.currency.clone())
            .bind(record.held.clone())
            .bind(record.carried.clone())
            .bind(period.clone())
            .execute(&mut *tx)
            .await?;
        }
        Self::insert_rows(
            &mut tx,
            "statements",
            &[
                "period",
                "partner_id",
                "partner_name",
                "program_id",
                "program_name",
                "language",
                "currency",
                "earned",
                "adjustments",
                "released",
                "carried_in",
                "payable",
                "carried",
                "held",
                "status",
                "hold_reasons",
            ],
            statements,
        )
        .await?;
        Self::insert_rows(
            &mut tx,
            "statement_lines",
            &[
                "period",
                "partner_id",
                "position",
                "booking",
                "product_category",
                "line_currency",
                "rate",
                "lines",
                "revenue",
                "earning",
            ],
            lines,
        )
        .await?;
        for id in close.booked_segments {
            sqlx::query("UPDATE revenue_segments SET booked_period = $1 WHERE id = $2 AND late_rows > 0 AND booked_period IS NULL")
                .bind(period.clone())
                .bind(*id)
                .execute(&mut *tx)
                .await?;
        }
        Self::insert_outbox(&mut tx, close.messages).await?;
        tx.commit().await?;
        Ok(CloseOutcome::Closed)
    }
}

/// A file's outcome to store.
/// A revenue file being stored, in one open transaction (see `Store::begin_file`). Dropped
/// without `finish`, it stores nothing.
pub struct FileWriter {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    run_id: String,
    sha256: String,
}

impl FileWriter {
    pub async fn add_segment(&mut self, segment: Segment) -> StoreResult<()> {
        Store::insert_segments(&mut self.tx, &self.sha256, vec![segment]).await
    }

    /// Stores a batch of the file's rejected rows (`revenue::REJECTION_BATCH` at a time).
    pub async fn add_rejections(&mut self, rejections: Vec<Rejection>) -> StoreResult<()> {
        Store::insert_rejections(&mut self.tx, &self.run_id, &self.sha256, rejections).await
    }

    /// Records the file's counts and rejected rows and commits the file.
    pub async fn finish(mut self, ingest: FileIngest) -> StoreResult<()> {
        sqlx::query(
            "UPDATE revenue_files SET rows_total = $1, rows_accepted = $2, rows_rejected = $3, rows_duplicate = $4 \
             WHERE sha256 = $5",
        )
        .bind(ingest.rows as i64)
        .bind(ingest.accepted as i64)
        .bind(ingest.rejected as i64)
        .bind(ingest.duplicates as i64)
        .bind(self.sha256.clone())
        .execute(&mut *self.tx)
        .await?;
        Store::insert_rejections(&mut self.tx, &self.run_id, &self.sha256, ingest.rejections)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Records the file as rejected whole (SPEC §7.2), with why, and commits: nothing else of
    /// it is kept. Call before any segment is added.
    pub async fn reject(mut self, source_file: &str, detail: String) -> StoreResult<()> {
        sqlx::query("UPDATE revenue_files SET status = 'rejected' WHERE sha256 = $1")
            .bind(self.sha256.clone())
            .execute(&mut *self.tx)
            .await?;
        let rejection = Rejection {
            source_file: source_file.to_owned(),
            line: None,
            record_id: String::new(),
            reason: RejectReason::FileRejected,
            detail,
            raw: String::new(),
            fields: None,
        };
        Store::insert_rejections(&mut self.tx, &self.run_id, &self.sha256, vec![rejection]).await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Stores nothing of the file.
    pub async fn abandon(self) -> StoreResult<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// Everything one close writes.
pub struct ClosePlan<'a> {
    pub period: Period,
    pub close_id: &'a str,
    pub run_id: &'a str,
    /// The last closed period the computation started from.
    pub basis: Option<Period>,
    pub statements: &'a [StatementRecord],
    pub booked_segments: &'a [i64],
    pub messages: &'a [OutboxMessage],
}

fn parse_period_opt(text: Option<String>) -> StoreResult<Option<Period>> {
    text.map(|t| {
        t.parse::<Period>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    })
    .transpose()
}

fn parse_decimal(text: String) -> StoreResult<Decimal> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("amount `{text}`")))
}
