//! Leases: a named lock in the store, so that two engine instances never run the same work at
//! once (SPEC §4). A lease expires unless renewed; a lease left by a process that is provably
//! gone is taken over at once, any other once it expires.
//!
//! "Provably gone" is decided from the holder's identity (`ProcessIdentity`): the kernel's boot
//! id, the PID namespace, the pid and the process's start time. Only a holder of this boot and
//! this PID namespace can be looked up in our `/proc`; it is gone when its pid is not there, is
//! a zombie, or belongs to a process started at another time (the pid was reused). A holder on
//! another machine, another boot, or in another container (same host name and kernel, another
//! PID namespace) cannot be judged from here and is waited for until its lease expires. The same
//! rule releases the outbox claims of dead senders (`outbox.rs`); fire claims carry the same
//! identity and are taken over on expiry only.

use std::sync::OnceLock;
use std::time::Duration;

use sqlx::Row;
use tokio::task::JoinHandle;

use super::{Store, StoreError, StoreResult};

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

/// Separates the parts of a holder id; host names, boot ids and numbers never contain it.
const HOLDER_SEPARATOR: char = '/';
/// `/proc/<pid>/stat`: the process start time (clock ticks after boot) is field 22, the 20th
/// after the parenthesised command name (field 2, which may itself hold spaces and brackets).
const STAT_START_TIME_AFTER_COMM: usize = 19;

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Who holds a lease or a claim: one process, told apart from every other process on any host
/// that shares the store. A part that could not be read is `None`, and a holder with a missing
/// part is never judged dead (its lease expires instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessIdentity {
    /// For people reading the store; liveness never depends on it.
    pub host: String,
    pub boot_id: Option<String>,
    /// The inode of the PID namespace (`/proc/self/ns/pid` reads `pid:[<inode>]`).
    pub pid_namespace: Option<u64>,
    pub pid: u32,
    /// Clock ticks after boot at which the process started.
    pub start_ticks: Option<u64>,
}

/// What this process can tell about a holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Same boot and PID namespace, and the process is still the one that took the lease.
    Alive,
    /// Same boot and PID namespace, and that process no longer exists: take over now.
    Gone,
    /// Cannot be looked up from here (another host, boot or container, or parts unknown).
    Unknown,
}

/// What `/proc/<pid>/stat` says about a pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcProbe {
    NoSuchProcess,
    Zombie,
    StartedAt(u64),
    /// The file exists but could not be read or parsed.
    Unreadable,
}

fn start_of_stat(stat: &str) -> ProcProbe {
    // Invariant of the format: the command name is the only field in parentheses, so the
    // fields after the last `)` are fixed.
    let Some((_, after_comm)) = stat.rsplit_once(')') else {
        return ProcProbe::Unreadable;
    };
    let mut fields = after_comm.split_whitespace();
    let state = fields.next();
    if matches!(state, Some("Z" | "X" | "x")) {
        return ProcProbe::Zombie;
    }
    match fields
        .nth(STAT_START_TIME_AFTER_COMM - 1)
        .map(str::parse::<u64>)
    {
        Some(Ok(ticks)) => ProcProbe::StartedAt(ticks),
        _ => ProcProbe::Unreadable,
    }
}

/// Reads `/proc/<pid>/stat` of this PID namespace.
pub(crate) fn probe_pid(pid: u32) -> ProcProbe {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => start_of_stat(&stat),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ProcProbe::NoSuchProcess,
        Err(_) => ProcProbe::Unreadable,
    }
}

fn read_pid_namespace() -> Option<u64> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let text = link.to_str()?;
    text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

impl ProcessIdentity {
    /// This process, read once.
    pub(crate) fn current() -> &'static ProcessIdentity {
        static CURRENT: OnceLock<ProcessIdentity> = OnceLock::new();
        CURRENT.get_or_init(|| {
            let pid = std::process::id();
            // `/proc` must be this process's own PID namespace's, or no pid read from it means
            // anything: then leave the namespace unknown, and nobody judges our leases early.
            let own_proc = std::fs::read_link("/proc/self")
                .ok()
                .and_then(|link| link.to_str()?.parse::<u32>().ok())
                == Some(pid);
            let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|id| id.trim().to_owned())
                .filter(|id| !id.is_empty() && !id.contains(HOLDER_SEPARATOR));
            let start_ticks = match probe_pid(pid) {
                ProcProbe::StartedAt(ticks) if own_proc => Some(ticks),
                _ => None,
            };
            ProcessIdentity {
                host: host_name().replace(HOLDER_SEPARATOR, "_"),
                boot_id,
                pid_namespace: read_pid_namespace().filter(|_| own_proc),
                pid,
                start_ticks,
            }
        })
    }

    /// A holder id for one lease or claim: this identity and a random part.
    pub(crate) fn holder_id(&self) -> String {
        let unknown = || "-".to_owned();
        format!(
            "{host}/{boot}/{namespace}/{pid}/{start}/{nonce}",
            host = self.host,
            boot = self.boot_id.clone().unwrap_or_else(unknown),
            namespace = self.pid_namespace.map_or_else(unknown, |n| n.to_string()),
            pid = self.pid,
            start = self.start_ticks.map_or_else(unknown, |t| t.to_string()),
            nonce = uuid::Uuid::new_v4().simple(),
        )
    }

    /// The identity in a holder id; `None` for ids of another form (older versions wrote
    /// `host/pid/uuid` or a bare uuid), whose holders are then waited for until expiry.
    pub(crate) fn of_holder(holder: &str) -> Option<ProcessIdentity> {
        let parts: Vec<&str> = holder.split(HOLDER_SEPARATOR).collect();
        let [host, boot, namespace, pid, start, _nonce] = parts.as_slice() else {
            return None;
        };
        Some(ProcessIdentity {
            host: (*host).to_owned(),
            boot_id: Some((*boot).to_owned()).filter(|b| *b != "-" && !b.is_empty()),
            pid_namespace: namespace.parse().ok(),
            pid: pid.parse().ok()?,
            start_ticks: start.parse().ok(),
        })
    }

    /// Whether `holder` is alive, as far as this process (`self`) can tell; `probe` looks a
    /// pid up in this PID namespace (`probe_pid`, or a stand-in in tests).
    pub(crate) fn judge(
        &self,
        holder: &ProcessIdentity,
        probe: impl Fn(u32) -> ProcProbe,
    ) -> Liveness {
        let same_boot = self.boot_id.is_some() && self.boot_id == holder.boot_id;
        let same_namespace =
            self.pid_namespace.is_some() && self.pid_namespace == holder.pid_namespace;
        let (true, true, Some(holder_start)) = (same_boot, same_namespace, holder.start_ticks)
        else {
            return Liveness::Unknown;
        };
        match probe(holder.pid) {
            ProcProbe::NoSuchProcess | ProcProbe::Zombie => Liveness::Gone,
            ProcProbe::StartedAt(ticks) if ticks != holder_start => Liveness::Gone,
            ProcProbe::StartedAt(_) => Liveness::Alive,
            ProcProbe::Unreadable => Liveness::Unknown,
        }
    }
}

/// True only when the process behind holder id `holder` is provably gone (see the module notes).
pub(crate) fn holder_is_gone(holder: &str) -> bool {
    ProcessIdentity::of_holder(holder).is_some_and(|identity| {
        ProcessIdentity::current().judge(&identity, probe_pid) == Liveness::Gone
    })
}

impl Store {
    /// Takes the lease `name`, waiting up to `max_wait` for its holder to finish.
    pub async fn acquire_lease(&self, name: &str, max_wait: Duration) -> StoreResult<Lease> {
        let identity = ProcessIdentity::current();
        let holder = identity.holder_id();
        let (host, pid) = (identity.host.clone(), i64::from(identity.pid));
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            let now = self.now_ms();
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
            // A holder whose process is provably gone will never release: take over now.
            let current = sqlx::query("SELECT holder FROM leases WHERE name = $1")
                .bind(name.to_owned())
                .fetch_optional(self.pool())
                .await?;
            if let Some(row) = current {
                let other: String = row.try_get(0)?;
                if holder_is_gone(&other) {
                    tracing::warn!(
                        lease = name,
                        holder = %other,
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
                .bind(store.now_ms() + LEASE_TTL_MS)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(boot: &str, namespace: u64, pid: u32, start: u64) -> ProcessIdentity {
        ProcessIdentity {
            host: "payout-1".into(),
            boot_id: Some(boot.into()),
            pid_namespace: Some(namespace),
            pid,
            start_ticks: Some(start),
        }
    }

    const BOOT: &str = "151919cc-8d04-4993-9704-4d686db8366c";
    const NAMESPACE: u64 = 4_026_531_836;

    #[test]
    fn only_a_holder_of_this_boot_and_pid_namespace_can_be_judged_gone() {
        let me = holder(BOOT, NAMESPACE, 100, 5_000);
        let nobody = |_| ProcProbe::NoSuchProcess;
        // Same host name, another boot (another machine or a reboot): alive until expiry,
        // even though no such pid exists here.
        let other_boot = holder("0f8e3a51-another-boot", NAMESPACE, 42, 7_000);
        assert_eq!(me.judge(&other_boot, nobody), Liveness::Unknown);
        // Same kernel, another container (PID namespace): its pid means nothing here.
        let other_container = holder(BOOT, NAMESPACE + 1, 42, 7_000);
        assert_eq!(me.judge(&other_container, nobody), Liveness::Unknown);
        // Same boot and namespace: gone when the pid is not there or is a zombie...
        let same = holder(BOOT, NAMESPACE, 42, 7_000);
        assert_eq!(me.judge(&same, nobody), Liveness::Gone);
        assert_eq!(me.judge(&same, |_| ProcProbe::Zombie), Liveness::Gone);
        // ... or is a live process started at another time (the pid was reused) ...
        assert_eq!(
            me.judge(&same, |_| ProcProbe::StartedAt(9_999)),
            Liveness::Gone
        );
        // ... and alive when it is the same process.
        assert_eq!(
            me.judge(&same, |pid| if pid == 42 {
                ProcProbe::StartedAt(7_000)
            } else {
                ProcProbe::NoSuchProcess
            }),
            Liveness::Alive
        );
        assert_eq!(
            me.judge(&same, |_| ProcProbe::Unreadable),
            Liveness::Unknown
        );
        // Parts unknown on either side: never judged.
        let mut unknown = same.clone();
        unknown.start_ticks = None;
        assert_eq!(me.judge(&unknown, nobody), Liveness::Unknown);
        let mut blind = me.clone();
        blind.pid_namespace = None;
        assert_eq!(blind.judge(&same, nobody), Liveness::Unknown);
    }

    #[test]
    fn holder_ids_carry_the_identity_and_older_forms_are_not_judged() {
        let me = holder(BOOT, NAMESPACE, 100, 5_000);
        let id = me.holder_id();
        assert_eq!(ProcessIdentity::of_holder(&id), Some(me.clone()));
        assert_ne!(id, me.holder_id(), "each lease or claim gets its own id");
        // What earlier versions wrote: a bare uuid (leases), host/pid/uuid (claims).
        assert_eq!(
            ProcessIdentity::of_holder("6f1c2a2e-4b7e-4c1e-9d7a-1f2e3d4c5b6a"),
            None
        );
        assert_eq!(ProcessIdentity::of_holder("payout-1/42/6f1c2a2e"), None);
        assert!(!holder_is_gone("payout-1/42/6f1c2a2e"));
    }

    #[test]
    fn the_start_time_is_field_22_of_stat_whatever_the_command_name() {
        let stat =
            "4242 (we(i) rd) name) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2";
        assert_eq!(start_of_stat(stat), ProcProbe::StartedAt(987_654));
        assert_eq!(
            start_of_stat(
                "4242 (payout) Z 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654"
            ),
            ProcProbe::Zombie
        );
        assert_eq!(start_of_stat("garbage"), ProcProbe::Unreadable);
    }

    /// Against the real `/proc`: this process is alive; a finished child (same boot and
    /// namespace, pid gone) is gone at once; this pid with another start time is gone.
    #[test]
    fn this_process_is_alive_and_a_finished_child_is_gone() {
        let me = ProcessIdentity::current();
        assert!(
            me.boot_id.is_some() && me.pid_namespace.is_some() && me.start_ticks.is_some(),
            "{me:?}"
        );
        assert_eq!(me.judge(me, probe_pid), Liveness::Alive);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let child_pid = child.id();
        child.wait().unwrap();
        let finished = ProcessIdentity {
            pid: child_pid,
            ..me.clone()
        };
        assert_eq!(me.judge(&finished, probe_pid), Liveness::Gone);
        let reused = ProcessIdentity {
            start_ticks: me.start_ticks.map(|t| t + 1),
            ..me.clone()
        };
        assert_eq!(me.judge(&reused, probe_pid), Liveness::Gone);
        assert!(!holder_is_gone(&me.holder_id()));
    }
}
