//! The scheduler against a hand-moved clock (no real waiting): daylight-saving changes in three
//! zones over ten years, every fire exactly once through the store, catch-up after downtime,
//! two instances on one store, a dead instance's fire taken over; and the real `payout serve`.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use common::{Backend, Env, backends};
use payout::scheduler::jobs::JobSpec;
use payout::scheduler::schedule::Schedule;
use payout::scheduler::{Clock, FIRE_LEASE_MS, JobRun, ManualClock, Runner, Scheduler, load_jobs};
use payout::store::Store;

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn local_day_and_time(t: DateTime<Utc>, zone: Tz) -> (NaiveDate, (u32, u32)) {
    let local = t.with_timezone(&zone);
    (local.date_naive(), (local.hour(), local.minute()))
}

/// Daily fires over ten years: one per local day; a time skipped by spring-forward fires at
/// the end of the gap, a repeated time at its first occurrence.
#[test]
fn daily_fires_across_ten_years_of_dst_in_three_zones() {
    let (start, end) = (utc("2026-01-01T00:00:00Z"), utc("2036-01-01T00:00:00Z"));
    let days = (end - start).num_days() as usize;
    for (zone, expression, gap_end) in [
        ("Europe/Dublin", "0 30 1 * * *", (2, 0)),
        ("America/New_York", "0 30 2 * * *", (3, 0)),
        ("America/New_York", "0 30 1 * * *", (1, 30)),
        ("Australia/Sydney", "0 30 2 * * *", (3, 0)),
    ] {
        let schedule = Schedule::parse(expression, zone).unwrap();
        let tz: Tz = zone.parse().unwrap();
        let fires = schedule.fires_between(start, end);
        assert!(
            fires.windows(2).all(|w| w[0] < w[1]),
            "{zone} {expression}: strictly increasing"
        );
        let per_day: BTreeMap<NaiveDate, Vec<(u32, u32)>> =
            fires.iter().fold(BTreeMap::new(), |mut map, t| {
                let (day, time) = local_day_and_time(*t, tz);
                map.entry(day).or_default().push(time);
                map
            });
        assert!(
            (days - 1..=days + 1).contains(&fires.len()),
            "{zone} {expression}: {} fires in {days} days",
            fires.len()
        );
        assert!(
            per_day.values().all(|times| times.len() == 1),
            "{zone} {expression}: one fire per local day"
        );
        let wanted = schedule.expression.split_whitespace().collect::<Vec<_>>();
        let (hour, minute): (u32, u32) = (wanted[2].parse().unwrap(), wanted[1].parse().unwrap());
        let shifted: Vec<_> = per_day
            .iter()
            .filter(|(_, t)| t[0] != (hour, minute))
            .collect();
        // Only spring-forward days move, to the end of the gap: about ten over ten years.
        assert!(
            shifted.iter().all(|(_, t)| t[0] == gap_end),
            "{zone} {expression}: {shifted:?}"
        );
        assert!(
            shifted.len() <= 11,
            "{zone} {expression}: {} shifted days",
            shifted.len()
        );
    }
}

/// Hourly fires: 24 a local day, even on 23- and 25-hour days.
#[test]
fn hourly_fires_run_once_in_repeated_and_skipped_hours() {
    for zone in ["Europe/Dublin", "America/New_York", "Australia/Sydney"] {
        let schedule = Schedule::parse("0 30 * * * *", zone).unwrap();
        let tz: Tz = zone.parse().unwrap();
        let fires =
            schedule.fires_between(utc("2026-01-01T00:00:00Z"), utc("2036-01-01T00:00:00Z"));
        let mut per_day: BTreeMap<NaiveDate, usize> = BTreeMap::new();
        for t in &fires {
            *per_day.entry(local_day_and_time(*t, tz).0).or_default() += 1;
        }
        let inner: Vec<usize> = per_day
            .values()
            .skip(1)
            .take(per_day.len() - 2)
            .copied()
            .collect();
        assert!(
            inner.iter().all(|&n| n == 24),
            "{zone}: {:?}",
            inner.iter().filter(|&&n| n != 24).collect::<Vec<_>>()
        );
        assert!(fires.windows(2).all(|w| w[0] < w[1]));
    }
}

type Runs = Arc<Mutex<Vec<JobRun>>>;

fn counting_runner(runs: Runs) -> Runner {
    Arc::new(move |run: JobRun| {
        let runs = runs.clone();
        Box::pin(async move {
            runs.lock().unwrap().push(run);
            Ok("done".to_owned())
        })
    })
}

fn job(expression: &str, zone: &str) -> JobSpec {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("job.toml"),
        format!("name = \"job\"\nschedule = \"{expression}\"\ntime_zone = \"{zone}\"\ncommand = \"run\"\n"),
    )
    .unwrap();
    let (mut jobs, errors) = load_jobs(dir.path());
    assert!(errors.is_empty(), "{errors:?}");
    jobs.remove(0)
}

async fn store(env: &Env) -> Store {
    Store::connect(&env.database_url).await.unwrap()
}

#[tokio::test]
async fn fires_run_once_through_the_store_across_dst_and_restarts_catch_up_once() {
    for backend in backends() {
        let env = Env::new(backend).await;
        let clock = Arc::new(ManualClock::new(utc("2027-03-10T00:00:00Z")));
        let runs: Runs = Arc::default();
        let spec = job("0 30 * * * *", "America/New_York");
        let mut scheduler = Scheduler::new(
            store(&env).await,
            vec![spec.clone()],
            clock.clone(),
            counting_runner(runs.clone()),
        );
        scheduler.tick().await.unwrap();
        // Across spring-forward (2027-03-14) in 10-minute steps of simulated time.
        let until = utc("2027-03-17T00:00:00Z");
        while clock.now() < until {
            clock.advance(Duration::minutes(10));
            scheduler.tick().await.unwrap();
            scheduler.wait_idle().await;
        }
        let expected = spec
            .schedule
            .fires_between(utc("2027-03-10T00:00:00Z"), until);
        let ran: Vec<DateTime<Utc>> = runs
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.scheduled_at)
            .collect();
        let extra: Vec<_> = ran.iter().filter(|t| !expected.contains(t)).collect();
        assert_eq!(
            ran, expected,
            "every fire once, in order ({backend:?}); extra {extra:?}"
        );
        // 168 real hours each with a :30, plus 02:30 of the spring-forward day fired at 03:00.
        assert_eq!(ran.len(), 7 * 24 + 1);

        // Downtime of ten days: a new instance catches up the latest missed fire only.
        drop(scheduler);
        clock.advance(Duration::days(10));
        let mut restarted = Scheduler::new(
            store(&env).await,
            vec![spec.clone()],
            clock.clone(),
            counting_runner(runs.clone()),
        );
        let caught_up = restarted.tick().await.unwrap();
        restarted.wait_idle().await;
        assert_eq!(caught_up.len(), 1);
        assert_eq!(
            caught_up[0].scheduled_at,
            spec.schedule.latest_fire(clock.now()).unwrap()
        );
        assert!(restarted.tick().await.unwrap().is_empty(), "nothing twice");
        let recorded = store(&env).await.job_fires("job").await.unwrap();
        assert_eq!(recorded.len(), 7 * 24 + 1 + 1);
        assert!(recorded.iter().all(|(_, status)| status == "succeeded"));
    }
}

#[tokio::test]
async fn two_instances_on_one_store_run_each_fire_once_in_100_trials() {
    for backend in backends() {
        let env = Env::new(backend).await;
        let clock = Arc::new(ManualClock::new(utc("2026-11-01T00:00:00Z")));
        let runs: Runs = Arc::default();
        let spec = job("0 * * * * *", "Europe/Dublin");
        let mut first = Scheduler::new(
            store(&env).await,
            vec![spec.clone()],
            clock.clone(),
            counting_runner(runs.clone()),
        );
        let mut second = Scheduler::new(
            store(&env).await,
            vec![spec.clone()],
            clock.clone(),
            counting_runner(runs.clone()),
        );
        let (a, b) = tokio::join!(first.tick(), second.tick());
        a.unwrap();
        b.unwrap();
        for _ in 0..100 {
            clock.advance(Duration::minutes(1));
            let (a, b) = tokio::join!(first.tick(), second.tick());
            assert_eq!(
                a.unwrap().len() + b.unwrap().len(),
                1,
                "exactly one instance runs the fire ({backend:?})"
            );
            first.wait_idle().await;
            second.wait_idle().await;
        }
        let runs = runs.lock().unwrap();
        let mut per_fire: BTreeMap<DateTime<Utc>, usize> = BTreeMap::new();
        for run in runs.iter() {
            *per_fire.entry(run.scheduled_at).or_default() += 1;
        }
        assert_eq!(per_fire.len(), 100);
        assert!(per_fire.values().all(|&n| n == 1));
    }
}

#[tokio::test]
async fn a_dead_instance_fire_is_taken_over_after_its_lease() {
    for backend in backends() {
        let env = Env::new(backend).await;
        let clock = Arc::new(ManualClock::new(utc("2026-12-03T05:59:00Z")));
        let spec = job("0 0 6 3 * *", "Europe/Dublin");
        let hanging: Runner = Arc::new(|_| Box::pin(std::future::pending()));
        let mut dying = Scheduler::new(
            store(&env).await,
            vec![spec.clone()],
            clock.clone(),
            hanging,
        );
        dying.tick().await.unwrap();
        clock.advance(Duration::minutes(2));
        assert_eq!(
            dying.tick().await.unwrap().len(),
            1,
            "the first instance starts the fire"
        );
        dying.abort_all(); // it dies mid-run: no end recorded, no more renewals

        let runs: Runs = Arc::default();
        let mut survivor = Scheduler::new(
            store(&env).await,
            vec![spec.clone()],
            clock.clone(),
            counting_runner(runs.clone()),
        );
        survivor.tick().await.unwrap();
        survivor.wait_idle().await;
        assert!(runs.lock().unwrap().is_empty(), "not while the lease holds");
        clock.advance(Duration::milliseconds(FIRE_LEASE_MS + 1_000));
        let taken = survivor.tick().await.unwrap();
        survivor.wait_idle().await;
        assert_eq!(taken.len(), 1);
        assert_eq!(
            taken[0].period.unwrap().to_string(),
            "2026-11",
            "the month before the fire's local date"
        );
        let fires = store(&env).await.job_fires("job").await.unwrap();
        assert_eq!(
            fires,
            vec![(
                utc("2026-12-03T06:00:00Z").timestamp_millis(),
                "succeeded".to_owned()
            )]
        );
    }
}

#[test]
fn a_malformed_job_file_is_reported_and_the_others_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), "name = \"a\"\nschedule = \"0 0 6 3 * *\"\ntime_zone = \"Europe/Dublin\"\ncommand = \"run\"\n").unwrap();
    std::fs::write(dir.path().join("b.toml"), "name = \"b\"\nschedule = \"0 0 6 3 * *\"\ntime_zone = \"Nowhere/City\"\ncommand = \"run\"\n").unwrap();
    std::fs::write(
        dir.path().join("waves.toml"),
        "reminder_every_days = 7\nmax_reminders = 1\n",
    )
    .unwrap();
    let (jobs, errors) = load_jobs(dir.path());
    assert_eq!(
        jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].to_string().contains("b.toml: time_zone:"),
        "{}",
        errors[0]
    );
}

#[tokio::test]
async fn serve_runs_jobs_and_stops_on_sigterm() {
    let env = Env::new(Backend::Sqlite).await;
    let jobs = env.dir.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(jobs.join("send.toml"), "name = \"every-second-send\"\nschedule = \"* * * * * *\"\ntime_zone = \"UTC\"\ncommand = \"send\"\n").unwrap();
    std::fs::write(
        jobs.join("broken.toml"),
        "name = \"broken\"\nschedule = \"every day\"\ntime_zone = \"UTC\"\ncommand = \"send\"\n",
    )
    .unwrap();
    let jobs_arg = jobs.to_str().unwrap();
    let child = env
        .command(&["serve", "--jobs", jobs_arg])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3_500));
    // SAFETY-free: `kill` the command, as systemd would on stop.
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("broken.toml: schedule:"));
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["status", "--json", "--jobs", jobs_arg])).unwrap();
    let job = &status["jobs"][0];
    assert_eq!(job["name"], "every-second-send");
    assert!(job["fires"].as_i64().unwrap() >= 2, "{job}");
    assert!(job["last_fire"].as_str().unwrap().ends_with('Z'));
    assert!(job["next_fire"].is_string());
}

/// A running `payout serve`; killed if the test ends without stopping it.
struct ServeProcess(Option<std::process::Child>);

impl ServeProcess {
    fn start(command: &mut std::process::Command) -> Self {
        Self(Some(command.spawn().unwrap()))
    }

    /// SIGTERM, as systemd stops it; returns its exit status and standard error.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let child = self.0.take().unwrap();
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn write_job(dir: &std::path::Path, file: &str, name: &str, schedule: &str, command: &str) {
    std::fs::write(
        dir.join(file),
        format!("name = \"{name}\"\nschedule = \"{schedule}\"\ntime_zone = \"UTC\"\ncommand = \"{command}\"\n"),
    )
    .unwrap();
}

/// Waits (up to a minute, for a loaded machine) until `ready` holds of the fires recorded for
/// `job` in `store`.
async fn wait_for_fires(store: &Store, job: &str, ready: impl Fn(&[(i64, String)]) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let fires = store.job_fires(job).await.unwrap();
        if ready(&fires) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{job}: fires never became ready: {fires:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The scheduled second of each `job started` event in a `--log-format json` log.
fn started_fires(log: &str) -> Vec<(String, i64)> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["fields"]["message"] == "job started")
        .map(|event| {
            let fields = &event["fields"];
            let text = fields["scheduled_at"].as_str().unwrap();
            let at = chrono::NaiveDateTime::parse_from_str(
                text.trim_end_matches(" UTC"),
                "%Y-%m-%d %H:%M:%S%.f",
            )
            .unwrap_or_else(|e| panic!("scheduled_at `{text}`: {e}"));
            (
                fields["job"].as_str().unwrap().to_owned(),
                at.and_utc().timestamp(),
            )
        })
        .collect()
}

/// Processes started at random fractions of a second tick at different fractions: each
/// scheduled second must still be one fire, recorded once on the whole second and run once.
#[tokio::test]
async fn serve_processes_started_at_unaligned_fractions_run_each_scheduled_second_once() {
    const PROCESSES: usize = 4;
    const RUN_FOR_MS: u64 = 9_000;
    for backend in backends() {
        let env = Env::new(backend).await;
        let jobs = env.dir.path().join("jobs");
        std::fs::create_dir_all(&jobs).unwrap();
        write_job(
            &jobs,
            "send.toml",
            "every-second-send",
            "* * * * * *",
            "send",
        );
        write_job(
            &jobs,
            "invite.toml",
            "two-second-invite",
            "*/2 * * * * *",
            "invite",
        );
        env.ok(&["status"]); // the store exists (migrated) before the instances race
        let jobs_arg = jobs.to_str().unwrap();
        let mut serves = Vec::new();
        for _ in 0..PROCESSES {
            let fraction_ms = (uuid::Uuid::new_v4().as_u128() % 1000) as u64;
            std::thread::sleep(std::time::Duration::from_millis(fraction_ms));
            let mut command = env.command(&["serve", "--jobs", jobs_arg]);
            command
                .env("PAYOUT_LOG", "payout=info")
                .env("PAYOUT_LOG_FORMAT", "json")
                .stderr(std::process::Stdio::piped());
            serves.push(ServeProcess::start(&mut command));
        }
        let store = store(&env).await;
        wait_for_fires(&store, "every-second-send", |fires| !fires.is_empty()).await;
        tokio::time::sleep(std::time::Duration::from_millis(RUN_FOR_MS)).await;
        let mut started = Vec::new();
        for serve in serves {
            let (status, log) = serve.stop();
            assert!(
                status.success(),
                "{backend:?}: serve exited {status}: {log}"
            );
            started.extend(started_fires(&log));
        }

        for (job, every_s) in [("every-second-send", 1), ("two-second-invite", 2)] {
            let fires = store.job_fires(job).await.unwrap();
            let seconds: Vec<i64> = fires.iter().map(|(ms, _)| ms.div_euclid(1000)).collect();
            assert!(
                fires.iter().all(|(ms, _)| ms % 1000 == 0),
                "{backend:?} {job}: every fire on a whole second: {fires:?}"
            );
            let mut distinct = seconds.clone();
            distinct.dedup();
            assert_eq!(
                distinct, seconds,
                "{backend:?} {job}: each second recorded once"
            );
            assert!(
                seconds.windows(2).all(|w| w[1] - w[0] == every_s),
                "{backend:?} {job}: no scheduled second missed: {seconds:?}"
            );
            let expected_min = (RUN_FOR_MS / 1000) as usize / every_s as usize / 2;
            assert!(
                fires.len() >= expected_min,
                "{backend:?} {job}: {} fires in {RUN_FOR_MS} ms",
                fires.len()
            );
            assert!(
                fires
                    .iter()
                    .all(|(_, s)| s == "succeeded" || s == "skipped"),
                "{backend:?} {job}: {fires:?}"
            );
            // Ran once: one `job started` among all processes per fire that ran, none twice.
            let mut runs: Vec<i64> = started
                .iter()
                .filter(|(name, _)| name == job)
                .map(|(_, second)| *second)
                .collect();
            runs.sort();
            let ran: Vec<i64> = fires
                .iter()
                .filter(|(_, s)| s == "succeeded")
                .map(|(ms, _)| ms.div_euclid(1000))
                .collect();
            assert_eq!(
                runs, ran,
                "{backend:?} {job}: every fire that ran, ran once"
            );
        }
        let taken_over: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM job_fires WHERE attempts <> 1")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(taken_over, 0, "{backend:?}: no fire was started twice");
    }
}

/// `status` on a machine without the job files lists every job the store knows, with the
/// latest fire's outcome, and the job files a `serve` could not load.
#[tokio::test]
async fn status_without_the_job_files_lists_jobs_outcomes_and_unloadable_files_from_the_store() {
    for backend in backends() {
        let env = Env::new(backend).await;
        let jobs = env.dir.path().join("jobs");
        std::fs::create_dir_all(&jobs).unwrap();
        write_job(
            &jobs,
            "send.toml",
            "every-second-send",
            "* * * * * *",
            "send",
        );
        // No waves.toml beside it: every fire fails, and says why (every 5 s: the loaded machine
        // must not make it last until the next fire, which would be skipped).
        write_job(
            &jobs,
            "migrate.toml",
            "failing-migrate",
            "*/5 * * * * *",
            "migrate",
        );
        write_job(&jobs, "broken.toml", "broken", "every day", "send");
        let serve = ServeProcess::start(
            env.command(&["serve", "--jobs", jobs.to_str().unwrap()])
                .stderr(std::process::Stdio::piped()),
        );
        let store = store(&env).await;
        wait_for_fires(&store, "every-second-send", |f| f.len() >= 2).await;
        wait_for_fires(&store, "failing-migrate", |f| {
            f.iter().any(|(_, status)| status == "failed")
        })
        .await;
        let (exit, log) = serve.stop();
        assert!(exit.success(), "{exit}: {log}");

        // A fire that comes while the previous one still runs is recorded as skipped.
        let clock = Arc::new(ManualClock::new(utc("2026-12-03T05:59:58Z")));
        let hanging: Runner = Arc::new(|_| Box::pin(std::future::pending()));
        let mut slow = Scheduler::new(
            store.clone(),
            vec![job("* * * * * *", "UTC")],
            clock.clone(),
            hanging,
        );
        slow.tick().await.unwrap();
        clock.advance(Duration::seconds(1));
        assert_eq!(slow.tick().await.unwrap().len(), 1, "the first fire hangs");
        clock.advance(Duration::seconds(1));
        assert!(slow.tick().await.unwrap().is_empty(), "the next is skipped");
        slow.abort_all();

        let elsewhere = tempfile::tempdir().unwrap();
        let status = |json: bool| {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_payout"));
            command
                .current_dir(elsewhere.path())
                .env_remove("PAYOUT_JOBS")
                .args(["--database-url", &env.database_url, "status"]);
            if json {
                command.arg("--json");
            }
            let output = command.output().unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap()
        };
        let report: serde_json::Value = serde_json::from_str(&status(true)).unwrap();
        let listed = report["jobs"].as_array().unwrap();
        let by_name = |name: &str| {
            listed
                .iter()
                .find(|j| j["name"] == name)
                .unwrap_or_else(|| panic!("{backend:?}: {name} not in {listed:?}"))
        };
        let send = by_name("every-second-send");
        assert_eq!(send["command"], "send");
        assert!(send["fires"].as_i64().unwrap() >= 2, "{send}");
        assert!(send["last_fire"].as_str().unwrap().ends_with('Z'), "{send}");
        assert!(send["next_fire"].is_null(), "no job file here: {send}");
        assert!(send["file"].is_null());
        // Succeeded, or skipped when a loaded machine made the previous send last a second.
        assert!(
            ["succeeded", "skipped"].contains(&send["last_outcome"].as_str().unwrap()),
            "{send}"
        );
        let migrate = by_name("failing-migrate");
        assert_eq!(migrate["last_outcome"], "failed", "{migrate}");
        assert!(
            migrate["last_detail"]
                .as_str()
                .unwrap()
                .contains("reading migration waves"),
            "{migrate}"
        );
        let skipped = by_name("job");
        assert_eq!(skipped["last_outcome"], "skipped", "{skipped}");
        assert_eq!(skipped["fires"], 2);
        assert_eq!(skipped["last_fire"], "2026-12-03T06:00:00Z");
        assert!(
            skipped["last_detail"]
                .as_str()
                .unwrap()
                .contains("still running")
        );
        let errors = report["job_errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0]["file"]
                .as_str()
                .unwrap()
                .ends_with("jobs/broken.toml")
        );
        assert_eq!(errors[0]["field"], "schedule");
        assert!(errors[0]["reason"].as_str().unwrap().contains("every day"));
        assert!(errors[0]["host"].is_string() && errors[0]["recorded_at"].is_string());

        let text = status(false);
        assert!(text.contains("JOB FILES NOT LOADED"), "{text}");
        assert!(
            text.contains("broken.toml: schedule: `every day`"),
            "{text}"
        );
        assert!(
            text.contains("failing-migrate") && text.contains("failed"),
            "{text}"
        );
        assert!(text.contains("reading migration waves"), "{text}");
        assert!(text.contains("(no job file here)"), "{text}");

        // With the job files at hand: the same jobs, with their next fire and file.
        let here: serde_json::Value =
            serde_json::from_str(&env.ok(&["status", "--json", "--jobs", jobs.to_str().unwrap()]))
                .unwrap();
        let local = here["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == "every-second-send")
            .unwrap();
        assert!(
            local["next_fire"].is_string() && local["file"].is_string(),
            "{local}"
        );
        assert_eq!(local["enabled"], true);
        assert_eq!(
            here["job_errors"].as_array().unwrap().len(),
            1,
            "listed once"
        );
    }
}

/// This machine as `/proc` shows it: host name, boot id, PID namespace inode.
fn this_host_boot_and_pid_namespace() -> (String, String, u64) {
    let read = |path: &str| std::fs::read_to_string(path).unwrap().trim().to_owned();
    let namespace = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let namespace = namespace.to_str().unwrap();
    (
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/random/boot_id"),
        namespace[5..namespace.len() - 1].parse().unwrap(),
    )
}

/// A pid that no process of this namespace has now (a child that has exited and been reaped).
fn a_pid_that_is_gone() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Containers can share a host name and a kernel (boot id) but not a PID namespace: a pid
/// that is not in our `/proc` may be a live process there. Its lease, and its outbox claims,
/// are waited for until they expire; only a holder of this boot and namespace whose process is
/// gone is taken over at once.
#[tokio::test]
async fn leases_and_claims_of_another_container_or_boot_wait_for_expiry_a_dead_local_one_does_not()
{
    for backend in backends() {
        let env = Env::new(backend).await;
        let store = store(&env).await;
        let (host, boot, namespace) = this_host_boot_and_pid_namespace();
        let gone = a_pid_that_is_gone();
        let holders = [
            (
                "another container",
                format!("{host}/{boot}/{}/{gone}/4242/a", namespace + 1),
            ),
            (
                "another boot",
                format!("{host}/0b5e7c1d-another-boot/{namespace}/{gone}/4242/b"),
            ),
            (
                "this boot and namespace",
                format!("{host}/{boot}/{namespace}/{gone}/4242/c"),
            ),
        ];
        let expires_ms = now_ms() + 600_000;
        for (what, holder) in &holders {
            sqlx::query("DELETE FROM leases")
                .execute(store.pool())
                .await
                .unwrap();
            sqlx::query("INSERT INTO leases (name, holder, host, pid, expires_at_ms) VALUES ('ledger', $1, $2, $3, $4)")
                .bind(holder.clone())
                .bind(host.clone())
                .bind(i64::from(gone))
                .bind(expires_ms)
                .execute(store.pool())
                .await
                .unwrap();
            let taken = store
                .acquire_lease("ledger", std::time::Duration::from_millis(700))
                .await;
            let dead_here = *what == "this boot and namespace";
            assert_eq!(taken.is_ok(), dead_here, "{backend:?}: lease of {what}");
            if let Ok(lease) = taken {
                lease.release().await.unwrap();
            }
        }

        for (id, (_, holder)) in holders.iter().enumerate() {
            sqlx::query(
                "INSERT INTO outbox (kind, partner_id, scope, recipient, recipient_name, message_id, status, created_at_ms, \
                 claimed_by, claim_expires_at_ms) VALUES ('statement', $1, '2026-10', 'a@example.com', 'A', $2, 'sending', 0, $3, $4)",
            )
            .bind(format!("10000{id}"))
            .bind(format!("<{id}@payout.invalid>"))
            .bind(holder.clone())
            .bind(expires_ms)
            .execute(store.pool())
            .await
            .unwrap();
        }
        assert_eq!(store.release_dead_claims().await.unwrap(), 1, "{backend:?}");
        let sending: Vec<String> = sqlx::query_scalar(
            "SELECT claimed_by FROM outbox WHERE status = 'sending' ORDER BY partner_id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(
            sending,
            [holders[0].1.clone(), holders[1].1.clone()],
            "{backend:?}"
        );
    }
}
