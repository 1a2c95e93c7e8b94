//! The `payout` binary: parse the command line, resolve settings, call one function per
//! command, and turn the outcome into an exit code with a one-line reason.

use std::process::ExitCode;

use clap::Parser;
use payout::cli::{Cli, Command, LogFormat};
use payout::commands;
use payout::settings::Settings;
use payout::store::Store;

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("PAYOUT_LOG").unwrap_or_else(|_| "warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// mimalloc: many threads allocate and free columns of millions of lines; glibc's per-thread
/// arenas kept far more memory resident than was live (and were slower).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::resolve(&cli) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("payout: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(settings.log_format);
    match execute(cli.command, &settings).await {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let reason = format!("{e:#}").replace('\n', " ");
            eprintln!("payout: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// How long a command waits, at exit, for the store's connections to close.
const STORE_CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn execute(command: Command, settings: &Settings) -> anyhow::Result<String> {
    if let Command::Preview { period, out } = &command {
        // The one command without a store.
        return commands::preview(settings, *period, out);
    }
    let store = Store::connect(&settings.database_url).await?;
    let result = commands::execute(command, settings, &store).await;
    // Closing the connections checkpoints SQLite's write-ahead log into the database file and
    // removes it, so that after any command the file alone is the whole store (a backup that
    // copied only `payout.db` while the log held the last commits could not be opened).
    // Bounded: a task still holding a connection (a PostgreSQL server gone silent) must not
    // keep the command from reporting its outcome.
    if tokio::time::timeout(STORE_CLOSE_TIMEOUT, store.close())
        .await
        .is_err()
    {
        tracing::warn!(
            "the store's connections did not close within {} s; exiting anyway",
            STORE_CLOSE_TIMEOUT.as_secs()
        );
    }
    result
}
