//! Leases: a named lock in the store, so that two engine instances never run the same work at
//! once (SPEC §4). A lease expires unless renewed; a lease left by a dead process on this host
//! is taken over at once, one left on another host once it expires.

use std::time::Duration;

use sqlx::Row;
use tokio::task::JoinHandle;

use super::{Store, StoreError, StoreResult, now_ms};

/// A lease lives this long without renewal; a live holder renews it three times as often.
const LEASE_TTL_MS: i64 = 60_000;
/// Waiting for a busy lease polls this often.
const LEASE_POLL_MS: u64 = 250;

/// A held lease; released on `release`, or by expiry if the process dies.
pub struct Lease {
    store: Store,
    name: String,
    holder: String,
    renewal: JoinHandle<()>,
}

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

pub(crate) fn process_alive(pid: i64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl Store {
    /// Takes the lease `name`, waiting up to `max_wait` for its holder to finish.
    pub async fn acquire_lease(&self, name: &str, max_wait: Duration) -> StoreResult<Lease> {
        let holder = uuid::Uuid::new_v4().to_string();
        let host = host_name();
        let pid = i64::from(std::process::id());
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            let now = now_ms();
            let taken = sqlx::query(
                "INSERT INTO leases (name, holder, host, pid, expires_at_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, host = excluded.host, pid = excluded.pid, \
                 expires_at_ms = excluded.expires_at_ms WHERE leases.expires_at_ms < $6",
            )
            .bind(name.to_owned())
            .bind(holder.clone())
            .bind(host.clone())
            .bind(pid)
            .bind(now + LEASE_TTL_MS)
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected();
            if taken == 1 {
                let renewal = tokio::spawn(renew(self.clone(), name.to_owned(), holder.clone()));
                return Ok(Lease {
                    store: self.clone(),
                    name: name.to_owned(),
                    holder,
                    renewal,
                });
            }
            // A holder on this host whose process is gone will never release: take over now.
            let current = sqlx::query("SELECT holder, host, pid FROM leases WHERE name = $1")
                .bind(name.to_owned())
                .fetch_optional(self.pool())
                .await?;
            if let Some(row) = current {
                let (other, other_host, other_pid): (String, String, i64) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                if other_host == host && !process_alive(other_pid) {
                    tracing::warn!(
                        lease = name,
                        pid = other_pid,
                        "taking over the lease of a process that is gone"
                    );
                    sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                        .bind(name.to_owned())
                        .bind(other)
                        .execute(self.pool())
                        .await?;
                    continue;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Busy(format!(
                    "lease `{name}` is held by another instance; gave up after {max_wait:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(LEASE_POLL_MS)).await;
        }
    }
}

async fn renew(store: Store, name: String, holder: String) {
    let every = Duration::from_millis((LEASE_TTL_MS / 3) as u64);
    loop {
        tokio::time::sleep(every).await;
        let result =
            sqlx::query("UPDATE leases SET expires_at_ms = $1 WHERE name = $2 AND holder = $3")
                .bind(now_ms() + LEASE_TTL_MS)
                .bind(name.clone())
                .bind(holder.clone())
                .execute(store.pool())
                .await;
        if let Err(e) = result {
            tracing::warn!(lease = %name, error = %e, "could not renew lease; will retry");
        }
    }
}

impl Lease {
    pub async fn release(self) -> StoreResult<()> {
        self.renewal.abort();
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(self.name.clone())
            .bind(self.holder.clone())
            .execute(self.store.pool())
            .await?;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}
