//! The store: runs, ingested files, revenue segments, rejections, closes, statements,
//! balances, the outbox and leases. One `Store` over sqlx's `Any` driver, with SQLite (the
//! embedded default) and PostgreSQL backends and their migrations (`migrations.rs`). Every
//! state change of a run is one transaction. Money is TEXT decimal, never a float.
//!
//! This file holds the `Store` itself: connecting, the pool, migrations, errors and the
//! helpers its parts share. Each part of the state has its own module (`runs`, `revenue`,
//! `close`, `outbox`, `resend`, `jobs`, `lease`, `status`). The store keeps and returns data;
//! it never decides a payout and never renders anything for people (`status_view` does).

mod close;
mod connect;
mod insert;
mod jobs;
mod lease;
mod migrations;
mod outbox;
mod resend;
mod revenue;
mod review;
mod runs;
mod status;

use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

pub use close::{CloseOutcome, ClosePlan};

pub use crate::domain::redact::{self, redact_url, url_scheme};
pub use connect::{CONNECT_DEADLINE, ConnectFailure};
pub use jobs::{FireClaim, FireKey, JobRecord, RecordedJobFileError};
pub use lease::Lease;
pub use outbox::{ClaimedMessage, DeliveryOutcome, OutboxMessage, WaveProgress};
pub use resend::{ResendOutcome, ResendRequest, ResendStatus};
pub use revenue::{FileWriter, MISSING_PARTNER_SOURCE, StoredSegment};
pub use review::{PublishedDraft, ReportKind, ReportSnapshot};
pub use status::{
    ApprovalStatus, CurrencyTotals, DraftRecord, FailedMessage, InputStatus, JobFileErrorStatus,
    JobStatus, MissingPartnerStatus, PeriodStatus, RunStatus, StatusReport, WarningStatus,
    WaveStatus,
};

use crate::domain::clock::{Clock, SystemClock};
use crate::domain::money::{Currency, Payable};
use crate::domain::period::Period;
use crate::domain::reasons::RejectReason;
use crate::domain::status::UnknownStatus;

/// How long SQLite waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 60_000;
/// Connections per process: one writer at a time is all the engine needs, plus readers.
const MAX_CONNECTIONS: u32 = 4;
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
    /// A status given as text that is none of its enum's values.
    #[error("{0}")]
    UnknownStatus(#[from] UnknownStatus),
}

/// A status given as its enum converts without failing.
impl From<std::convert::Infallible> for StoreError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
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

/// The codes of the retried reasons (`RejectReason::is_retried`) as an SQL list,
/// `'UNKNOWN_PARTNER', 'FX_RATE_MISSING'`, for `reason IN (…)`. The codes are the engine's
/// own constants, never input.
fn retried_reasons_sql() -> String {
    RejectReason::ALL
        .iter()
        .filter(|r| r.is_retried())
        .map(|r| format!("'{}'", r.code()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Where leases, claims, retry backoff and recorded times read the time.
    clock: Arc<dyn Clock>,
}

impl Store {
    /// Closes every connection of the pool, waiting for those in use to be returned. With
    /// SQLite, the last connection to close checkpoints the write-ahead log into the database
    /// file and deletes it.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The same store reading time from `clock` (tests move a `ManualClock` instead of
    /// sleeping).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Now, by the store's clock: the one time source of the commands that take a store.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Now, in milliseconds since the Unix epoch, by the store's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

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
        let store = Self {
            pool,
            backend,
            clock: Arc::new(SystemClock),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The schema migrations of `backend`, in version order, as `connect` applies them.
    pub fn migrator(backend: Backend) -> sqlx::migrate::Migrator {
        migrations::migrator(backend)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let migrator = Self::migrator(self.backend);
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
}

/// A stored period (`YYYY-MM`); anything else is corrupt data.
fn parse_period_opt(text: Option<String>) -> StoreResult<Option<Period>> {
    text.map(|t| {
        t.parse::<Period>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    })
    .transpose()
}

/// A stored amount (TEXT decimal with at most the currency's minor units); anything else is
/// corrupt data, never a silent zero or a rounding.
fn parse_payable(text: &str, currency: Currency) -> StoreResult<Payable> {
    Payable::parse(text, currency)
        .map_err(|e| StoreError::Corrupt(format!("amount `{text}` {currency}: {e}")))
}

/// A stored currency code; anything else is corrupt data.
fn parse_currency(code: &str) -> StoreResult<Currency> {
    Currency::parse(code).ok_or_else(|| StoreError::Corrupt(format!("currency `{code}`")))
}
