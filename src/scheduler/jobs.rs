//! Job files (`jobs/*.toml`, SPEC §6): one job each. A malformed file is reported with its file
//! and field and the other jobs still load. `waves.toml` in the same folder is not a job.
//! `serve` records the files it could not load in the store, so that `payout status` shows
//! them on any machine.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::schedule::{Schedule, ScheduleError};
use crate::domain::period::Period;
use crate::store::{Store, StoreResult};

/// The file in `jobs/` that configures migration waves, not a job.
pub const WAVES_FILE: &str = "waves.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobCommand {
    Run,
    Close,
    Send,
    Invite,
    Migrate,
}

impl JobCommand {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "run" => Some(Self::Run),
            "close" => Some(Self::Close),
            "send" => Some(Self::Send),
            "invite" => Some(Self::Invite),
            "migrate" => Some(Self::Migrate),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Close => "close",
            Self::Send => "send",
            Self::Invite => "invite",
            Self::Migrate => "migrate",
        }
    }
}

/// Which period a `run` or `close` job works on, from the fire's local date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodRule {
    /// The month before the fire's local date.
    Previous,
    /// The fire's local month.
    Current,
}

#[derive(Debug, Clone)]
pub struct JobSpec {
    pub name: String,
    pub file: PathBuf,
    pub schedule: Schedule,
    pub command: JobCommand,
    pub period: Option<PeriodRule>,
    pub enabled: bool,
}

impl JobSpec {
    /// The period a fire at `scheduled_at` works on (`None` for commands without a period).
    pub fn period_for(&self, scheduled_at: DateTime<Utc>) -> Option<Period> {
        let local = Period::of_date(
            scheduled_at
                .with_timezone(&self.schedule.time_zone)
                .date_naive(),
        );
        self.period.map(|rule| match rule {
            PeriodRule::Previous => local.previous(),
            PeriodRule::Current => local,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {problem}")]
pub struct JobFileError {
    pub file: String,
    pub field: String,
    pub problem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobToml {
    name: String,
    schedule: String,
    time_zone: String,
    command: String,
    period: Option<String>,
    /// Defaults to `true`, except for `close` jobs, which must say it (see `parse_job`).
    enabled: Option<bool>,
}

fn parse_job(file: &Path, text: &str) -> Result<JobSpec, JobFileError> {
    let error = |field: &str, problem: String| JobFileError {
        file: file.display().to_string(),
        field: field.to_owned(),
        problem,
    };
    let raw: JobToml = toml::from_str(text).map_err(|e| {
        let message = e.message().to_owned();
        let field = message.split('`').nth(1).unwrap_or("file").to_owned();
        error(&field, message)
    })?;
    let schedule = Schedule::parse(&raw.schedule, &raw.time_zone).map_err(|problem| {
        let field = match problem {
            ScheduleError::TimeZone(_) => "time_zone",
            ScheduleError::FieldCount(_) | ScheduleError::Cron { .. } => "schedule",
        };
        error(field, problem.to_string())
    })?;
    let command = JobCommand::parse(&raw.command).ok_or_else(|| {
        error(
            "command",
            format!(
                "`{}` is not one of run, close, send, invite, migrate",
                raw.command
            ),
        )
    })?;
    // Sealing a month is never a default: a close job names its period and whether it is on.
    if command == JobCommand::Close {
        for (field, given) in [
            ("enabled", raw.enabled.is_some()),
            ("period", raw.period.is_some()),
        ] {
            if !given {
                return Err(error(
                    field,
                    format!("a close job must set `{field}` explicitly"),
                ));
            }
        }
    }
    let period = match (command, raw.period.as_deref()) {
        (JobCommand::Run | JobCommand::Close, None | Some("previous")) => {
            Some(PeriodRule::Previous)
        }
        (JobCommand::Run | JobCommand::Close, Some("current")) => Some(PeriodRule::Current),
        (JobCommand::Run | JobCommand::Close, Some(other)) => {
            return Err(error(
                "period",
                format!("`{other}` is not `previous` or `current`"),
            ));
        }
        (_, None) => None,
        (_, Some(_)) => {
            return Err(error(
                "period",
                format!(
                    "only run and close jobs have a period, not {}",
                    command.as_str()
                ),
            ));
        }
    };
    Ok(JobSpec {
        name: raw.name,
        file: file.to_owned(),
        schedule,
        command,
        period,
        enabled: raw.enabled.unwrap_or(true),
    })
}

/// Loads every job file of `dir` (sorted by file name). Bad files are returned as errors
/// beside the good jobs; a second job with a name already taken is an error of its file.
pub fn load_jobs(dir: &Path) -> (Vec<JobSpec>, Vec<JobFileError>) {
    let mut jobs: Vec<JobSpec> = Vec::new();
    let mut errors = Vec::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "toml")
                    && p.file_name().is_some_and(|n| n != WAVES_FILE)
            })
            .collect(),
        Err(e) => {
            errors.push(JobFileError {
                file: dir.display().to_string(),
                field: "folder".into(),
                problem: e.to_string(),
            });
            return (jobs, errors);
        }
    };
    files.sort();
    for file in files {
        let parsed = std::fs::read_to_string(&file)
            .map_err(|e| JobFileError {
                file: file.display().to_string(),
                field: "file".into(),
                problem: e.to_string(),
            })
            .and_then(|text| parse_job(&file, &text));
        match parsed {
            Ok(job) if jobs.iter().any(|j| j.name == job.name) => errors.push(JobFileError {
                file: file.display().to_string(),
                field: "name".into(),
                problem: format!("job `{}` is already defined", job.name),
            }),
            Ok(job) => jobs.push(job),
            Err(e) => errors.push(e),
        }
    }
    (jobs, errors)
}

/// `path` as an absolute path (against the working directory), as text: how job files are
/// named in the store, the same whatever directory `serve` or `status` ran in.
pub fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// Records `errors`, the job files of `dir` that could not be loaded, in the store, in place
/// of what an earlier `serve` on this host recorded for the same folder.
pub async fn record_load_errors(
    store: &Store,
    dir: &Path,
    errors: &[JobFileError],
) -> StoreResult<()> {
    let rows: Vec<(String, String, String)> = errors
        .iter()
        .map(|e| {
            (
                absolute(Path::new(&e.file)),
                e.field.clone(),
                e.problem.clone(),
            )
        })
        .collect();
    store
        .record_job_file_errors(&absolute(dir), &rows, chrono::Utc::now().timestamp_millis())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_fields_are_named() {
        let file = Path::new("jobs/x.toml");
        let ok = "name = \"n\"\nschedule = \"0 0 6 3 * *\"\ntime_zone = \"Europe/Dublin\"\ncommand = \"run\"\n";
        assert!(parse_job(file, ok).is_ok());
        let err = parse_job(file, &ok.replace("Europe/Dublin", "Mars/Olympus")).unwrap_err();
        assert_eq!(err.field, "time_zone");
        let err = parse_job(file, &ok.replace("0 0 6 3 * *", "0 6 3 * *")).unwrap_err();
        assert_eq!(err.field, "schedule");
        let err = parse_job(file, &ok.replace("\"run\"", "\"dance\"")).unwrap_err();
        assert_eq!(err.field, "command");
        let err = parse_job(file, &format!("{ok}colour = \"red\"\n")).unwrap_err();
        assert!(err.to_string().starts_with("jobs/x.toml: colour:"), "{err}");
    }

    #[test]
    fn a_close_job_must_say_its_period_and_whether_it_is_enabled() {
        let file = Path::new("jobs/close.toml");
        let bare =
            "name = \"c\"\nschedule = \"0 0 6 3 * *\"\ntime_zone = \"UTC\"\ncommand = \"close\"\n";
        let err = parse_job(file, bare).unwrap_err();
        assert_eq!(err.field, "enabled", "{err}");
        let err = parse_job(file, &format!("{bare}enabled = true\n")).unwrap_err();
        assert_eq!(err.field, "period", "{err}");
        let job = parse_job(
            file,
            &format!("{bare}enabled = false\nperiod = \"previous\"\n"),
        )
        .unwrap();
        assert!(!job.enabled);
        // Other jobs keep their defaults: enabled, and the previous month for `run`.
        let run = parse_job(file, &bare.replace("\"close\"", "\"run\"")).unwrap();
        assert!(run.enabled && run.period == Some(PeriodRule::Previous));
    }

    #[test]
    fn previous_period_follows_the_local_date() {
        let job = parse_job(Path::new("j.toml"), "name = \"n\"\nschedule = \"0 30 0 1 * *\"\ntime_zone = \"Australia/Sydney\"\ncommand = \"run\"\n").unwrap();
        // 2026-10-31T13:30Z is 00:30 on 1 November in Sydney: the previous month is October.
        let fire: DateTime<Utc> = "2026-10-31T13:30:00Z".parse().unwrap();
        assert_eq!(job.period_for(fire).unwrap().to_string(), "2026-10");
    }
}
