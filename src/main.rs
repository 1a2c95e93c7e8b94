//! The `payout` binary: parse the command line, resolve settings, call one function per
//! command, and turn the outcome into an exit code with a one-line reason.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use payout::campaigns;
use payout::cli::{Cli, Command, LogFormat};
use payout::domain::period::parse_date;
use payout::ingest::MasterData;
use payout::notify::Renderer;
use payout::notify::delivery::{self, DeliveryConfig};
use payout::period_run::{self, CloseResult, Paths, RunOutcome};
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

async fn execute(command: Command, settings: &Settings) -> anyhow::Result<String> {
    let store = Store::connect(&settings.database_url).await?;
    let paths = Paths {
        data_dir: settings.data_dir.clone(),
        reports_dir: settings.reports_dir.clone(),
    };
    match command {
        Command::Run { period } => {
            let (outcome, ingest) = period_run::run(&store, &paths, period).await?;
            let ingested = format!(
                "ingested {} file(s) ({} rows: {} accepted, {} rejected, {} duplicates; {} file(s) rejected, {} already ingested; {} retried row(s) resolved)",
                ingest.files_ingested,
                ingest.rows,
                ingest.accepted,
                ingest.rejected,
                ingest.duplicates,
                ingest.files_rejected,
                ingest.files_skipped,
                ingest.retried_resolved
            );
            Ok(match outcome {
                RunOutcome::Draft {
                    partners,
                    exceptions,
                } => format!(
                    "{period}: draft written to {}: {partners} payout row(s), {exceptions} open exception(s); {ingested}",
                    paths.reports_dir.join(period.to_string()).display()
                ),
                RunOutcome::AlreadyClosed => {
                    format!("{period} is closed; its final reports stand. {ingested}")
                }
            })
        }
        Command::Close { period } => Ok(match period_run::close(&store, &paths, period).await? {
            CloseResult::Closed { statements, emails } => {
                format!("{period} closed: {statements} statement(s), {emails} email(s) queued")
            }
            CloseResult::AlreadyClosed => format!("{period} is already closed; nothing changed"),
        }),
        Command::Send {
            connections,
            retry_base_ms,
            max_retry_wait_secs,
        } => {
            let config = DeliveryConfig {
                smtp_url: settings.smtp_url.clone(),
                mail_dir: settings.mail_dir.clone(),
                from: settings.mail_from.clone(),
                connections,
                retry_base_ms,
                max_retry_wait: Duration::from_secs(max_retry_wait_secs),
            };
            let summary = delivery::send(&store, Arc::new(Renderer::new()?), &config).await?;
            if summary.failed > 0 {
                anyhow::bail!(
                    "{} message(s) failed permanently (see `payout status`); sent {}, retried {}, still queued {}",
                    summary.failed,
                    summary.sent,
                    summary.retried,
                    summary.queued
                );
            }
            Ok(format!(
                "sent {}, failed {}, retried {}, still queued {}",
                summary.sent, summary.failed, summary.retried, summary.queued
            ))
        }
        Command::Invite => {
            let master = MasterData::load(&settings.data_dir)?;
            Ok(match campaigns::invite(&store, &master).await? {
                (Some(period), queued) => {
                    format!("{queued} invitation(s) queued (eligibility as of {period})")
                }
                (None, _) => "no successful run yet: nothing to invite from".to_owned(),
            })
        }
        Command::Migrate { waves, today } => {
            let master = MasterData::load(&settings.data_dir)?;
            let today = match today {
                Some(text) => parse_date(&text)
                    .ok_or_else(|| anyhow::anyhow!("--today `{text}` is not YYYY-MM-DD"))?,
                None => chrono::Utc::now().date_naive(),
            };
            let summary = campaigns::migrate(&store, &master, &waves, today).await?;
            Ok(format!(
                "{today}: {} migration notice(s) and {} reminder(s) queued, {} partner(s) completed",
                summary.notified, summary.reminded, summary.completed
            ))
        }
        Command::Status { json } => {
            let report = store.status_report().await?;
            if json {
                Ok(serde_json::to_string_pretty(&report)?)
            } else {
                Ok(payout::store::render_status(&report))
            }
        }
    }
}
