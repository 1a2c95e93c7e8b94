//! One function per command (SPEC §6), shared by the command line and the scheduler, each
//! returning the one-line outcome an operator reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::campaigns;
use crate::cli::{self, Command};
use crate::domain::period::{Period, parse_date};
use crate::ingest::MasterData;
use crate::ingest::warning::Warnings;
use crate::notify::Renderer;
use crate::notify::delivery::DeliveryConfig;
use crate::notify::smtp::SmtpSettings;
use crate::run::{self, CloseResult, Paths, RunOutcome};
use crate::scheduler::{self, JobCommand, JobRun, Runner};
use crate::settings::Settings;
use crate::status_view::render_status;
use crate::store::{JobFileErrorStatus, JobStatus, Store};

/// `payout preview`: the period's payouts from the input folder alone.
pub fn preview(settings: &Settings, period: Period, out: &Path) -> anyhow::Result<String> {
    let (computation, summary) = run::preview(&settings.data_dir, period, out)?;
    Ok(format!(
        "{period}: preview written to {}: {} payout row(s) from {} file(s) ({} rows: {} accepted, {} rejected, {} duplicates; {} file(s) rejected)",
        out.display(),
        computation,
        summary.files_ingested,
        summary.rows,
        summary.accepted,
        summary.rejected,
        summary.duplicates,
        summary.files_rejected,
    ) + &warning_lines(&summary.warnings))
}

/// The warnings of a run under its summary line: one line each, or nothing when there are none.
fn warning_lines(warnings: &Warnings) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    let mut text = format!("\n{} warning(s):", warnings.count());
    for warning in warnings.listed() {
        text.push_str(&format!("\n  {warning}"));
    }
    text
}

/// Runs one command against `store` and returns its one-line outcome.
pub async fn execute(
    command: Command,
    settings: &Settings,
    store: &Store,
) -> anyhow::Result<String> {
    let paths = Paths {
        data_dir: settings.data_dir.clone(),
        reports_dir: settings.reports_dir.clone(),
        csv_bom: settings.csv_bom,
        issuer: settings.issuer.clone(),
    };
    match command {
        Command::Preview { period, out } => preview(settings, period, &out),
        Command::Run { period } => {
            let (outcome, ingest) = run::run(store, &paths, period).await?;
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
            let outcome_line = match outcome {
                RunOutcome::Draft {
                    partners,
                    exceptions,
                    changed_partners,
                } => format!(
                    "{period}: draft written to {}: {partners} payout row(s), {exceptions} open exception(s), {changed_partners} partner(s) changed since the previous draft (changes.csv); {ingested}",
                    paths.reports_dir.join(period.to_string()).display()
                ),
                RunOutcome::Unchanged => format!(
                    "{period}: inputs and store unchanged since the last draft; {} stands. {ingested}",
                    paths.reports_dir.join(period.to_string()).display()
                ),
                RunOutcome::AlreadyClosed => {
                    format!("{period} is closed; its final reports stand. {ingested}")
                }
            };
            Ok(format!("{outcome_line}{}", warning_lines(&ingest.warnings)))
        }
        Command::Close {
            period,
            approved_by,
        } => {
            let today = crate::run::guard::Today::at(store.now(), settings.time_zone);
            let sign_off =
                crate::run::guard::SignOff::new(approved_by.as_deref(), settings.require_approval);
            Ok(
                match run::close(store, &paths, period, today, &sign_off).await? {
                    CloseResult::Closed { statements, emails } => {
                        format!(
                            "{period} closed: {statements} statement(s), {emails} email(s) queued"
                        )
                    }
                    CloseResult::AlreadyClosed => {
                        format!("{period} is already closed; nothing changed")
                    }
                },
            )
        }
        Command::Send {
            connections,
            retry_base_ms,
            max_retry_wait_secs,
        } => {
            let config = DeliveryConfig {
                smtp: settings.smtp_url.clone().map(|url| SmtpSettings {
                    url,
                    ca_file: settings.smtp_ca_file.clone(),
                    timeout: settings.smtp_timeout,
                }),
                mail_dir: settings.mail_dir.clone(),
                reports_dir: settings.reports_dir.clone(),
                from: settings.mail_from.clone(),
                connections,
                retry_base_ms,
                max_retry_wait: Duration::from_secs(max_retry_wait_secs),
            };
            let summary = crate::send::send(store, Arc::new(Renderer::new()?), &config).await?;
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
        Command::Resend {
            period,
            partner,
            requested_by,
        } => {
            let requested_by = crate::resend::requester(requested_by)?;
            let outcome =
                crate::resend::resend(store, &settings.data_dir, period, &partner, &requested_by)
                    .await?;
            Ok(if outcome.queued.is_empty() {
                format!(
                    "{period}: nothing queued: the {} current recipient(s) of partner {partner}'s statement already have it",
                    outcome.already_had.len()
                )
            } else {
                format!(
                    "{period}: statement of partner {partner} queued to {} new recipient(s) ({}); {} current recipient(s) already had it",
                    outcome.queued.len(),
                    outcome.queued.join(", "),
                    outcome.already_had.len()
                )
            })
        }
        Command::Invite => {
            let master = MasterData::load(&settings.data_dir)?;
            Ok(match campaigns::invite(store, &master).await? {
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
                None => store.now().date_naive(),
            };
            let summary = campaigns::migrate(store, &master, &waves, today).await?;
            Ok(format!(
                "{today}: {} migration notice(s) and {} reminder(s) queued, {} partner(s) completed",
                summary.notified, summary.reminded, summary.completed
            ))
        }
        Command::Serve { jobs } => {
            let shutdown = shutdown_signal();
            let (specs, errors) = scheduler::load_jobs(&jobs);
            for error in &errors {
                tracing::error!(%error, "job file not loaded; the other jobs still run");
                eprintln!("payout: {error}");
            }
            anyhow::Context::context(
                scheduler::jobs::record_load_errors(store, &jobs, &errors).await,
                "recording the job files that could not be loaded",
            )?;
            let names: Vec<&str> = specs
                .iter()
                .filter(|j| j.enabled)
                .map(|j| j.name.as_str())
                .collect();
            tracing::info!(jobs = ?names, "serving");
            let runner = job_runner(settings.clone(), store.clone(), jobs.clone());
            let scheduler = scheduler::Scheduler::new(
                store.clone(),
                specs,
                Arc::new(scheduler::SystemClock),
                runner,
            );
            scheduler.serve(shutdown).await?;
            Ok("stopped".to_owned())
        }
        Command::Status { json, jobs } => {
            let mut report = store.status_report().await?;
            (report.jobs, report.job_errors) = job_status(store, &jobs).await?;
            if json {
                Ok(serde_json::to_string_pretty(&report)?)
            } else {
                Ok(render_status(&report))
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a SIGTERM during start-up (while the first tick may already be
/// running a fire) then stops `serve` gracefully instead of killing it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = signal(SignalKind::interrupt())
            .and_then(|interrupt| Ok((interrupt, signal(SignalKind::terminate())?)));
        async move {
            match handlers {
                Ok((mut interrupt, mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no signal handlers; stop with Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The command a fire runs, with the same defaults as the command line.
pub fn command_for(run: &JobRun, jobs_dir: &Path, time_zone: chrono_tz::Tz) -> Command {
    match (run.command, run.period) {
        (JobCommand::Run, Some(period)) => Command::Run { period },
        // A scheduled close approves nothing: with `require_approval` it is refused.
        (JobCommand::Close, Some(period)) => Command::Close {
            period,
            approved_by: None,
        },
        (JobCommand::Run | JobCommand::Close, None) => Command::Status {
            json: false,
            jobs: jobs_dir.to_owned(),
        },
        (JobCommand::Send, _) => Command::Send {
            connections: cli::SEND_CONNECTIONS,
            retry_base_ms: cli::SEND_RETRY_BASE_MS,
            max_retry_wait_secs: cli::SEND_MAX_RETRY_WAIT_SECS,
        },
        (JobCommand::Invite, _) => Command::Invite,
        (JobCommand::Migrate, _) => Command::Migrate {
            waves: jobs_dir.join(scheduler::jobs::WAVES_FILE),
            today: Some(
                run.scheduled_at
                    .with_timezone(&time_zone)
                    .date_naive()
                    .to_string(),
            ),
        },
    }
}

/// The runner of `payout serve`: each fire runs its command in this process.
pub fn job_runner(settings: Settings, store: Store, jobs_dir: PathBuf) -> Runner {
    let (specs, _) = scheduler::load_jobs(&jobs_dir);
    let zones: std::collections::HashMap<String, chrono_tz::Tz> = specs
        .iter()
        .map(|j| (j.name.clone(), j.schedule.time_zone))
        .collect();
    Arc::new(move |run: JobRun| {
        let (settings, store) = (settings.clone(), store.clone());
        let zone = zones.get(&run.job).copied().unwrap_or(chrono_tz::UTC);
        let command = command_for(&run, &jobs_dir, zone);
        Box::pin(async move {
            if let Command::Close { period, .. } = command {
                ensure_scheduled_close_was_reviewed(&store, period, settings.time_zone).await?;
            }
            execute(command, &settings, &store).await
        })
    })
}

/// The scheduler never closes a month nobody has reviewed: a scheduled close of an open period
/// needs a draft of it (an operator's `payout close` does not, SPEC §6). A month that has not
/// ended is refused first, with that reason.
async fn ensure_scheduled_close_was_reviewed(
    store: &Store,
    period: Period,
    time_zone: chrono_tz::Tz,
) -> anyhow::Result<()> {
    if store.close_id(period).await?.is_some() {
        return Ok(());
    }
    crate::run::guard::ensure_ended(
        period,
        &crate::run::guard::Today::at(store.now(), time_zone),
    )?;
    if store.last_draft(&period.to_string()).await?.is_none() {
        anyhow::bail!(
            "{period} has no draft: a scheduled close needs a reviewed draft (`payout run --period {period}`) first"
        );
    }
    Ok(())
}

/// Every job with a file in `jobs_dir` or known to the store (SPEC §6): last and next
/// scheduled fire, fires recorded, the latest fire's outcome; and the job files that could not
/// be loaded, here or by a `serve` (as it recorded them). A `jobs_dir` that does not exist
/// here (status run on another machine) is no error: the jobs then come from the store alone,
/// with no next fire.
pub async fn job_status(
    store: &Store,
    jobs_dir: &Path,
) -> anyhow::Result<(Vec<JobStatus>, Vec<JobFileErrorStatus>)> {
    let (specs, local_errors) = if jobs_dir.exists() {
        scheduler::load_jobs(jobs_dir)
    } else {
        (Vec::new(), Vec::new())
    };
    let mut records = store.job_records().await?;
    let now = store.now();
    let rfc3339 =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let stored_time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(rfc3339)
            .ok_or_else(|| anyhow::anyhow!("a stored job time ({ms} ms) is out of range"))
    };
    let entry = |name: String, record: crate::store::JobRecord| -> anyhow::Result<JobStatus> {
        Ok(JobStatus {
            name,
            command: record.command,
            enabled: None,
            last_fire: record.last_fire_ms.map(stored_time).transpose()?,
            next_fire: None,
            fires: record.fires,
            last_outcome: record.last_status,
            last_detail: record.last_detail,
            file: None,
        })
    };
    let mut statuses = Vec::new();
    for spec in specs {
        let record = records.remove(&spec.name).unwrap_or_default();
        statuses.push(JobStatus {
            command: Some(spec.command.as_str().to_owned()),
            enabled: Some(spec.enabled),
            next_fire: spec
                .enabled
                .then(|| spec.schedule.next_fire(now))
                .flatten()
                .map(rfc3339),
            file: Some(spec.file.display().to_string()),
            ..entry(spec.name.clone(), record)?
        });
    }
    for (name, record) in records {
        statuses.push(entry(name, record)?);
    }

    let mut errors: Vec<JobFileErrorStatus> = Vec::new();
    for recorded in store.recorded_job_file_errors().await? {
        errors.push(JobFileErrorStatus {
            file: recorded.file,
            field: recorded.field,
            reason: recorded.problem,
            host: Some(recorded.host),
            recorded_at: Some(stored_time(recorded.recorded_at_ms)?),
        });
    }
    for error in local_errors {
        let file = scheduler::jobs::absolute(Path::new(&error.file));
        // Listed once when a `serve` recorded the same problem of the same file.
        if !errors
            .iter()
            .any(|e| e.file == file && e.field == error.field && e.reason == error.problem)
        {
            errors.push(JobFileErrorStatus {
                file,
                field: error.field,
                reason: error.problem,
                host: None,
                recorded_at: None,
            });
        }
    }
    Ok((statuses, errors))
}
