//! Opening the database: one explicit first connection, bounded in time, before any pool is
//! built, so that a database that cannot be reached fails within seconds with its cause
//! (connection refused, authentication failed, unknown host, an SQLite file that cannot be
//! opened) instead of a pool timing out minutes later. Transient refusals of a server that is
//! starting up are retried a bounded number of times. It never prints a password.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::time::Instant;

/// The first connection to PostgreSQL (name resolution and retries included) gives up after
/// this long: an operator waits seconds, not minutes, to learn the database is unreachable.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(9);
/// One connection attempt waits at most this long for the server.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts of the first connection when the server answers "not now".
const MAX_CONNECT_ATTEMPTS: u32 = 3;
/// The wait before the second attempt; doubled for each further one.
const RETRY_BACKOFF: Duration = Duration::from_millis(300);

/// PostgreSQL SQLSTATEs of a failed log-in (`invalid_password`,
/// `invalid_authorization_specification`).
const PG_AUTH_FAILED: [&str; 2] = ["28P01", "28000"];
/// `invalid_catalog_name`: the database named in the URL does not exist.
const PG_UNKNOWN_DATABASE: &str = "3D000";
/// `too_many_connections`, `cannot_connect_now` (starting up or shutting down): worth a retry.
const PG_TRANSIENT: [&str; 2] = ["53300", "57P03"];
/// SQLite result codes: `SQLITE_CANTOPEN`, `SQLITE_NOTADB`.
const SQLITE_CANTOPEN: &str = "14";
const SQLITE_NOTADB: &str = "26";

/// Why the database could not be opened; shown after the (redacted) URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectFailure {
    #[error("connection refused by {address} (is the server running and listening there?)")]
    Refused { address: String },
    #[error("authentication failed for user `{user}`")]
    AuthenticationFailed { user: String },
    #[error("unknown host `{host}`: {reason}")]
    UnknownHost { host: String, reason: String },
    #[error("database `{database}` does not exist on the server")]
    UnknownDatabase { database: String },
    #[error("no answer from {address} within {waited_ms} ms")]
    TimedOut { address: String, waited_ms: u128 },
    #[error("the server is not accepting connections ({reason}), {attempts} attempt(s)")]
    Unavailable { reason: String, attempts: u32 },
    #[error("cannot open the SQLite file {path}: {reason}")]
    SqliteOpen { path: String, reason: String },
    #[error("invalid database URL: {reason}")]
    InvalidUrl { reason: String },
    #[error("{reason}")]
    Other { reason: String },
}

/// How an attempt ended, for the retry loop.
enum Attempt {
    Connected,
    Transient(ConnectFailure),
    Final(ConnectFailure),
}

/// Removes `secret` from a driver's message, in case a driver ever echoes it.
fn scrub(message: String, secret: Option<&str>) -> String {
    match secret {
        Some(secret) if !secret.is_empty() => message.replace(secret, super::redact::MASK),
        _ => message,
    }
}

/// The password as the driver reads it from the URL (percent-decoded), to scrub messages.
fn url_password(url: &str) -> Option<String> {
    url::Url::parse(url).ok().and_then(|parsed| {
        parsed.password().map(|p| {
            // `+` is literal in user info; only `%XX` is decoded.
            url::form_urlencoded::parse(format!("p={}", p.replace('+', "%2B")).as_bytes())
                .next()
                .map_or_else(|| p.to_owned(), |(_, v)| v.into_owned())
        })
    })
}

/// The one query parameter the PostgreSQL driver reads a password from.
const PG_PASSWORD_PARAMETER: &str = "password";

/// The query parameters sqlx's PostgreSQL driver reads (`PgConnectOptions::from_str`).
const PG_QUERY_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// The keys of a URL's query, percent-decoded, whether or not the rest of it parses.
fn query_keys(url: &str) -> Vec<String> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or("");
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let key = pair.split('=').next().unwrap_or("");
            url::form_urlencoded::parse(key.as_bytes())
                .next()
                .map_or_else(String::new, |(key, _)| key.into_owned())
        })
        .collect()
}

/// Connects once to the PostgreSQL server of `url` and closes the connection again.
pub async fn probe_postgres(url: &str) -> Result<(), ConnectFailure> {
    // The driver ignores a parameter it does not know and logs it, value included: a
    // password given as `pwd=`, `PASSWORD=` or `sslpassword=` would be printed and not used.
    if let Some(key) = super::redact::secret_query_keys(url)
        .into_iter()
        .find(|key| *key != PG_PASSWORD_PARAMETER)
    {
        return Err(ConnectFailure::InvalidUrl {
            reason: format!(
                "query parameter `{key}` is not read by the PostgreSQL driver; give the password as `{PG_PASSWORD_PARAMETER}=` or in the user info"
            ),
        });
    }
    // Any other parameter the driver does not read is logged by it with its value: refused,
    // named by its key only (a misspelt `pasword=` would otherwise print the password).
    if let Some(key) = query_keys(url)
        .into_iter()
        .find(|key| !PG_QUERY_PARAMETERS.contains(&key.as_str()))
    {
        // Only the key's leading name is shown: `password%3Dsecret` decodes to one key.
        let name: String = key
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .take(40)
            .collect();
        let cut = if name.len() < key.len() { "…" } else { "" };
        return Err(ConnectFailure::InvalidUrl {
            reason: format!(
                "query parameter `{name}{cut}` is not read by the PostgreSQL driver (it reads {})",
                PG_QUERY_PARAMETERS.join(", ")
            ),
        });
    }
    let password = url_password(url);
    let options = PgConnectOptions::from_str(url).map_err(|e| ConnectFailure::InvalidUrl {
        reason: scrub(e.to_string(), password.as_deref()),
    })?;
    let deadline = Instant::now() + CONNECT_DEADLINE;
    let address = match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => {
            let (host, port) = (options.get_host().to_owned(), options.get_port());
            resolve(&host, port, deadline).await?;
            format!("{host}:{port}")
        }
    };
    let mut backoff = RETRY_BACKOFF;
    let mut attempt = 1;
    loop {
        let started = Instant::now();
        let wait = deadline
            .saturating_duration_since(started)
            .min(ATTEMPT_TIMEOUT);
        let outcome = match tokio::time::timeout(wait, PgConnection::connect_with(&options)).await {
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                Attempt::Connected
            }
            Ok(Err(error)) => classify_postgres(error, &options, &address, attempt, &password),
            Err(_) => Attempt::Transient(ConnectFailure::TimedOut {
                address: address.clone(),
                waited_ms: started.elapsed().as_millis(),
            }),
        };
        match outcome {
            Attempt::Connected => return Ok(()),
            Attempt::Final(failure) => return Err(failure),
            Attempt::Transient(failure)
                if attempt >= MAX_CONNECT_ATTEMPTS || Instant::now() + backoff >= deadline =>
            {
                return Err(failure);
            }
            Attempt::Transient(failure) => {
                // Not a warning: the final failure is the one the operator reads, once.
                tracing::info!(%failure, attempt, "database not reachable yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
        }
    }
}

/// Resolves the server's name first, so that an unknown host is named as such.
async fn resolve(host: &str, port: u16, deadline: Instant) -> Result<(), ConnectFailure> {
    let unknown = |reason: String| ConnectFailure::UnknownHost {
        host: host.to_owned(),
        reason,
    };
    let wait = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(wait, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(mut addresses)) => match addresses.next() {
            Some(_) => Ok(()),
            None => Err(unknown("the name has no address".into())),
        },
        Ok(Err(e)) => Err(unknown(e.to_string())),
        Err(_) => Err(unknown(format!(
            "name resolution took longer than {} ms",
            wait.as_millis()
        ))),
    }
}

fn classify_postgres(
    error: sqlx::Error,
    options: &PgConnectOptions,
    address: &str,
    attempt: u32,
    password: &Option<String>,
) -> Attempt {
    let scrubbed = |message: String| scrub(message, password.as_deref());
    match error {
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Attempt::Final(ConnectFailure::Refused {
                address: address.to_owned(),
            })
        }
        sqlx::Error::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            ) =>
        {
            Attempt::Transient(ConnectFailure::Unavailable {
                reason: scrubbed(e.to_string()),
                attempts: attempt,
            })
        }
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if PG_AUTH_FAILED.contains(&code.as_str()) {
                Attempt::Final(ConnectFailure::AuthenticationFailed {
                    user: options.get_username().to_owned(),
                })
            } else if code == PG_UNKNOWN_DATABASE {
                Attempt::Final(ConnectFailure::UnknownDatabase {
                    database: options.get_database().unwrap_or_default().to_owned(),
                })
            } else if PG_TRANSIENT.contains(&code.as_str()) {
                Attempt::Transient(ConnectFailure::Unavailable {
                    reason: scrubbed(db.message().to_owned()),
                    attempts: attempt,
                })
            } else {
                Attempt::Final(ConnectFailure::Other {
                    reason: scrubbed(format!("{} (SQLSTATE {code})", db.message())),
                })
            }
        }
        other => Attempt::Final(ConnectFailure::Other {
            reason: scrubbed(other.to_string()),
        }),
    }
}

/// Opens the SQLite file of `url` (created when missing, as the pool will), reads its header
/// and runs the pool's `pragmas`, so that a missing folder, a file without permission, a file
/// that is not a database or a read-only one is reported before anything else (the pool would
/// retry a failing set-up until it timed out). Local: no deadline; a locked database waits
/// `busy_timeout` like every statement.
pub async fn probe_sqlite(
    url: &str,
    busy_timeout: Duration,
    pragmas: &str,
) -> Result<(), ConnectFailure> {
    // `sqlite://user:secret@/path` would be read as a file path holding the secret.
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    if after_scheme
        .split('/')
        .next()
        .is_some_and(|authority| authority.contains('@'))
    {
        return Err(ConnectFailure::InvalidUrl {
            reason: "an SQLite URL takes no user or password: sqlite://PATH".to_owned(),
        });
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| ConnectFailure::InvalidUrl {
            reason: e.to_string(),
        })?
        .busy_timeout(busy_timeout)
        .disable_statement_logging();
    let path = options.get_filename().to_owned();
    let cannot_open = |reason: String| ConnectFailure::SqliteOpen {
        path: path.display().to_string(),
        reason,
    };
    let mut connection = SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| cannot_open(sqlite_reason(&e, &path)))?;
    let header = match sqlx::query("PRAGMA schema_version")
        .fetch_optional(&mut connection)
        .await
    {
        Ok(_) => sqlx::raw_sql(pragmas)
            .execute(&mut connection)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    let _ = connection.close().await;
    header.map_err(|e| cannot_open(sqlite_reason(&e, &path)))
}

fn sqlite_reason(error: &sqlx::Error, path: &Path) -> String {
    let code = error
        .as_database_error()
        .and_then(|db| db.code())
        .map(|c| c.into_owned());
    let message = error
        .as_database_error()
        .map_or_else(|| error.to_string(), |db| db.message().to_owned());
    match code.as_deref() {
        Some(SQLITE_CANTOPEN) => match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                format!("{message}: the folder {} does not exist", dir.display())
            }
            _ => format!("{message} (check the path and its permissions)"),
        },
        Some(SQLITE_NOTADB) => format!("{message}: the file is not an SQLite database"),
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_sqlite_folder_is_named() {
        let failure = probe_sqlite(
            "sqlite:///nonexistent-dir/x.db?mode=rwc",
            Duration::from_secs(1),
            "",
        )
        .await
        .unwrap_err();
        let text = failure.to_string();
        assert!(
            text.contains("/nonexistent-dir/x.db") && text.contains("does not exist"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let text = probe_sqlite(&url, Duration::from_secs(1), "PRAGMA foreign_keys = ON;")
            .await
            .unwrap_err()
            .to_string();
        assert!(text.contains("not an SQLite database"), "{text}");
    }

    #[test]
    fn unknown_postgres_parameters_and_sqlite_user_info_are_refused_without_their_values() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for url in [
            "postgres://user@127.0.0.1:1/db?pasword=SECRET1",
            "postgres://user@127.0.0.1:1/db?sslmode=disable&token=SECRET1",
            "postgres://user@127.0.0.1:1/db?password%3DSECRET1",
            "postgres://user@127.0.0.1:1/db?secret=SECRET1#x",
        ] {
            let error = runtime
                .block_on(probe_postgres(url))
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("is not read by the PostgreSQL driver"),
                "{url}: {error}"
            );
            assert!(!error.contains("SECRET1"), "{url}: {error}");
        }
        let error = runtime
            .block_on(probe_sqlite(
                "sqlite://user:SECRET2@/tmp/x.db",
                Duration::from_secs(1),
                "",
            ))
            .unwrap_err()
            .to_string();
        assert!(
            !error.contains("SECRET2") && error.contains("no user or password"),
            "{error}"
        );
        assert_eq!(
            query_keys("postgres://h/db?sslmode=require&application_name=x"),
            ["sslmode", "application_name"]
        );
    }

    #[test]
    fn a_driver_message_never_shows_the_password() {
        let url = "postgres://payout:p%40ss%23word@db.example/payout";
        let password = url_password(url);
        assert_eq!(password.as_deref(), Some("p@ss#word"));
        assert_eq!(
            scrub("bad: p@ss#word at db.example".into(), password.as_deref()),
            "bad: *** at db.example"
        );
    }
}
