//! Command-line definitions (SPEC §6). Every flag may also come from a `PAYOUT_*` variable,
//! then from `payout.toml` (see `settings`).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::domain::period::Period;

/// Defaults of `payout send`, shared with the scheduler's `send` fires (`commands::command_for`).
pub const SEND_CONNECTIONS: usize = 4;
pub const SEND_RETRY_BASE_MS: u64 = 1000;
pub const SEND_MAX_RETRY_WAIT_SECS: u64 = 60;

#[derive(Debug, Parser)]
#[command(
    name = "payout",
    version,
    about = "Batch payout processing for a partner incentive program"
)]
pub struct Cli {
    /// Input directory (partners.csv, programs.toml, revenue/, …). Default `fixtures/`.
    #[arg(long = "data", env = "PAYOUT_DATA", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Report directory, one folder per period. Default `reports/`.
    #[arg(long = "reports", env = "PAYOUT_REPORTS", global = true)]
    pub reports_dir: Option<PathBuf>,
    /// `sqlite://FILE` (default `sqlite://payout.db`) or `postgres://…`.
    #[arg(
        long,
        env = "PAYOUT_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// `smtp://host:port[?tls=required|opportunistic|none]` or `smtps://…`; without it mail is
    /// written as .eml files. STARTTLS is required by default when credentials are set.
    #[arg(long, env = "PAYOUT_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Extra trusted CA certificate (PEM) for the SMTP server's TLS (a private relay).
    #[arg(long = "smtp-ca-file", env = "PAYOUT_SMTP_CA_FILE", global = true)]
    pub smtp_ca_file: Option<PathBuf>,
    /// Seconds one SMTP step (connect, greeting, each command, the data) may take. Default 30.
    #[arg(
        long = "smtp-timeout-secs",
        env = "PAYOUT_SMTP_TIMEOUT_SECS",
        global = true
    )]
    pub smtp_timeout_secs: Option<u64>,
    /// Where .eml files go without an SMTP URL. Default `reports/outbox/`.
    #[arg(long = "mail-dir", env = "PAYOUT_MAIL_DIR", global = true)]
    pub mail_dir: Option<PathBuf>,
    /// Settings file read for anything not given as a flag or variable.
    #[arg(
        long,
        env = "PAYOUT_CONFIG",
        global = true,
        default_value = "payout.toml"
    )]
    pub config: PathBuf,
    /// Sender of every email.
    #[arg(long, env = "PAYOUT_MAIL_FROM", global = true)]
    pub mail_from: Option<String>,
    /// Log format on standard error.
    #[arg(long, env = "PAYOUT_LOG_FORMAT", global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// IANA time zone whose date decides whether a period has ended (`close`). Default `UTC`.
    #[arg(long, env = "PAYOUT_TIME_ZONE", global = true)]
    pub time_zone: Option<String>,
    /// Refuse `close` without `--approved-by` (`--require-approval[=true|false]`). Default false.
    #[arg(long, env = "PAYOUT_REQUIRE_APPROVAL", global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub require_approval: Option<bool>,
    /// Start every CSV report with a UTF-8 byte-order mark, for Excel (`--csv-bom[=true|false]`).
    #[arg(long, env = "PAYOUT_CSV_BOM", global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub csv_bom: Option<bool>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest new revenue, check eligibility, compute and write the draft reports of a period.
    Run {
        #[arg(long, env = "PAYOUT_PERIOD")]
        period: Period,
    },
    /// Compute a period's payouts from the input folder alone, without the store: every
    /// revenue file read and checked afresh, no history, no balances. Writes `payouts.csv` and
    /// `exceptions.csv` to --out; changes nothing else.
    Preview {
        #[arg(long, env = "PAYOUT_PERIOD")]
        period: Period,
        /// Folder for the preview's reports.
        #[arg(long)]
        out: PathBuf,
    },
    /// Finalise a period: statements, balance movements and statement emails, once.
    Close {
        #[arg(long, env = "PAYOUT_PERIOD")]
        period: Period,
        /// Who approved the reviewed draft; recorded with the close (status, manifest.json).
        /// Required when `require_approval` is set.
        #[arg(long)]
        approved_by: Option<String>,
    },
    /// Deliver the email outbox (SMTP with --smtp-url, else .eml files under --mail-dir).
    Send {
        /// SMTP connections, and messages in flight, at once.
        #[arg(long, env = "PAYOUT_SMTP_CONNECTIONS", default_value_t = SEND_CONNECTIONS)]
        connections: usize,
        /// First retry delay after a temporary failure; doubled on each attempt.
        #[arg(long, env = "PAYOUT_RETRY_BASE_MS", default_value_t = SEND_RETRY_BASE_MS)]
        retry_base_ms: u64,
        /// How long to wait for retries that are due soon before returning.
        #[arg(long, env = "PAYOUT_MAX_RETRY_WAIT_SECS", default_value_t = SEND_MAX_RETRY_WAIT_SECS)]
        max_retry_wait_secs: u64,
    },
    /// Queue a closed period's statement to the partner's current recipients that have not
    /// had it yet (after an address was corrected in the master data); once per recipient.
    Resend {
        #[arg(long, env = "PAYOUT_PERIOD")]
        period: Period,
        /// The partner's id (digits).
        #[arg(long, value_parser = partner_id)]
        partner: String,
        /// Who asks, recorded with the resend. Default: the login name ($USER).
        #[arg(long, env = "PAYOUT_REQUESTED_BY")]
        requested_by: Option<String>,
    },
    /// Queue invitations for partners found eligible but not enrolled by the latest run.
    Invite,
    /// Queue the migration-wave emails and reminders due today.
    Migrate {
        /// The waves file.
        #[arg(long, env = "PAYOUT_WAVES", default_value = "jobs/waves.toml")]
        waves: PathBuf,
        /// The date to act on (default: today, UTC).
        #[arg(long, env = "PAYOUT_TODAY")]
        today: Option<String>,
    },
    /// Run the scheduled jobs of the jobs folder until Ctrl-C or SIGTERM.
    Serve {
        /// Folder of job files (`*.toml`, one job each; `waves.toml` is not a job).
        #[arg(long, env = "PAYOUT_JOBS", default_value = "jobs")]
        jobs: PathBuf,
    },
    /// Periods, runs, outbox, exceptions and jobs at a glance.
    Status {
        /// Print one JSON object instead of tables.
        #[arg(long)]
        json: bool,
        /// Folder of job files, for the jobs' last and next fires.
        #[arg(long, env = "PAYOUT_JOBS", default_value = "jobs")]
        jobs: PathBuf,
    },
}

/// A partner id as the master data writes it: digits only.
fn partner_id(text: &str) -> Result<String, String> {
    let id = text.trim();
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id.to_owned())
    } else {
        Err(format!("`{text}` is not a partner id (digits)"))
    }
}
