//! `payout serve`: runs the jobs of `jobs/*.toml` on their schedules (SPEC §6).
//!
//! tokio-cron-scheduler wakes the loop every second; what is due is decided here, from the
//! job's schedule read in its time zone (`schedule`), against a `Clock` that tests move by
//! hand. Every fire is claimed in the store under (job, scheduled time), so a fire runs once
//! however many instances share the store and however often they restart. A fire missed while
//! no instance ran is caught up once at start-up (the latest one, not each). A running fire
//! holds a lease that its instance renews; a fire whose lease expired (its instance died) is
//! taken over by another instance and run again, which is safe because every command is
//! idempotent. The same job never runs twice at once: a fire that comes while an earlier one is
//! still running is recorded as skipped.
//!
//! A fire is its nominal scheduled second (`FireKey::nominal`), whatever fraction of a second
//! the tick that found it came at: instances started at different moments tick at different
//! fractions, and must still claim the same (job, scheduled time).

pub mod jobs;
pub mod schedule;

mod cron;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

pub use crate::domain::clock::{Clock, ManualClock, SystemClock};
pub use jobs::{JobCommand, JobSpec, load_jobs};

use crate::domain::period::Period;
use crate::domain::status::FireStatus;
use crate::store::{FireClaim, FireKey, Store};

/// A running fire's lease; renewed every third of it.
pub const FIRE_LEASE_MS: i64 = 60_000;

/// What the runner is asked to do for one fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    pub job: String,
    pub command: JobCommand,
    pub period: Option<Period>,
    pub scheduled_at: DateTime<Utc>,
}

pub type JobFuture = Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send>>;
/// Runs one fire; returns the command's one-line outcome.
pub type Runner = Arc<dyn Fn(JobRun) -> JobFuture + Send + Sync>;

pub struct Scheduler {
    store: Store,
    jobs: Vec<JobSpec>,
    instance: String,
    clock: Arc<dyn Clock>,
    runner: Runner,
    last_tick: Option<DateTime<Utc>>,
    first_seen: HashMap<String, DateTime<Utc>>,
    running: JoinSet<()>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl Scheduler {
    pub fn new(store: Store, jobs: Vec<JobSpec>, clock: Arc<dyn Clock>, runner: Runner) -> Self {
        let instance = Store::new_claimer();
        Self {
            store,
            jobs,
            instance,
            clock,
            runner,
            last_tick: None,
            first_seen: HashMap::new(),
            running: JoinSet::new(),
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// One pass: claims and starts every fire that is due, and takes over abandoned ones.
    /// Returns the fires this instance started.
    pub async fn tick(&mut self) -> anyhow::Result<Vec<JobRun>> {
        let now = self.clock.now();
        let mut started = Vec::new();
        for index in 0..self.jobs.len() {
            let job = self.jobs[index].clone();
            if !job.enabled {
                continue;
            }
            let first_seen = match self.first_seen.get(&job.name) {
                Some(t) => *t,
                None => {
                    let ms = self
                        .store
                        .job_first_seen(&job.name, job.command.as_str(), millis(now))
                        .await?;
                    let t = DateTime::from_timestamp_millis(ms).unwrap_or(now);
                    self.first_seen.insert(job.name.clone(), t);
                    t
                }
            };
            let due: Vec<DateTime<Utc>> = match self.last_tick {
                // Start-up: the latest fire missed while no instance ran, once.
                None => job
                    .schedule
                    .latest_fire(now)
                    .filter(|t| *t > first_seen)
                    .into_iter()
                    .collect(),
                Some(last) => job.schedule.fires_between(last.max(first_seen), now),
            };
            for computed in due {
                let fire = FireKey::nominal(computed);
                // The schedule computes whole seconds already; this is the key's own instant.
                let scheduled_at = fire.instant().unwrap_or(computed);
                match self
                    .store
                    .claim_fire(&job.name, fire, &self.instance, millis(now), FIRE_LEASE_MS)
                    .await?
                {
                    FireClaim::Run => started.push(self.start(&job, fire, scheduled_at)),
                    FireClaim::SkippedBusy => {
                        tracing::warn!(job = %job.name, %scheduled_at, "skipped: the previous fire is still running")
                    }
                    FireClaim::Taken => {}
                }
            }
        }
        for (name, fire) in self.store.abandoned_fires(millis(now)).await? {
            let Some(job) = self.jobs.iter().find(|j| j.name == name).cloned() else {
                continue;
            };
            let Some(scheduled_at) = fire.instant() else {
                tracing::error!(job = %name, scheduled_at_ms = fire.millis(), "abandoned fire has a scheduled time out of range; left alone");
                continue;
            };
            if self
                .store
                .take_over_fire(&name, fire, &self.instance, millis(now), FIRE_LEASE_MS)
                .await?
            {
                tracing::warn!(job = %name, %scheduled_at, "taking over a fire whose instance stopped renewing it");
                started.push(self.start(&job, fire, scheduled_at));
            }
        }
        self.last_tick = Some(now);
        Ok(started)
    }

    /// Starts the fire `fire` of `job`, scheduled at `scheduled_at` (`fire.instant()`).
    fn start(&mut self, job: &JobSpec, fire: FireKey, scheduled_at: DateTime<Utc>) -> JobRun {
        let run = JobRun {
            job: job.name.clone(),
            command: job.command,
            period: job.period_for(scheduled_at),
            scheduled_at,
        };
        let (store, instance, clock, runner, task_run) = (
            self.store.clone(),
            self.instance.clone(),
            self.clock.clone(),
            self.runner.clone(),
            run.clone(),
        );
        self.running.spawn(async move {
            let renew = {
                let (store, instance, clock, job) = (store.clone(), instance.clone(), clock.clone(), task_run.job.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis((FIRE_LEASE_MS / 3) as u64)).await;
                        let expires = millis(clock.now()) + FIRE_LEASE_MS;
                        if let Err(e) = store.renew_fire(&job, fire, &instance, expires).await {
                            tracing::warn!(%job, error = %e, "could not renew the fire lease; will retry");
                        }
                    }
                })
            };
            // Stops renewing when the run ends or is aborted, so a dead run's lease expires.
            let _renewal = AbortOnDrop(renew);
            tracing::info!(job = %task_run.job, scheduled_at = %task_run.scheduled_at, period = ?task_run.period, "job started");
            let outcome = runner(task_run.clone()).await;
            let (status, detail) = match &outcome {
                Ok(message) => (FireStatus::Succeeded, message.clone()),
                Err(e) => (FireStatus::Failed, format!("{e:#}")),
            };
            match &outcome {
                Ok(_) => tracing::info!(job = %task_run.job, %detail, "job succeeded"),
                Err(_) => tracing::error!(job = %task_run.job, %detail, "job failed"),
            }
            if let Err(e) = store.finish_fire(&task_run.job, fire, &instance, status, &detail, millis(clock.now())).await {
                tracing::error!(job = %task_run.job, error = %e, "could not record the end of the fire; another instance will take it over");
            }
        });
        run
    }

    /// Waits for every running fire to finish (graceful shutdown, tests).
    pub async fn wait_idle(&mut self) {
        while self.running.join_next().await.is_some() {}
    }

    /// Stops running fires at once, as a crash would (tests of take-over).
    pub fn abort_all(&mut self) {
        self.running.abort_all();
    }

    /// Runs until `shutdown` resolves: a tokio-cron-scheduler job ticks every second; then
    /// stops taking fires and lets running ones finish.
    pub async fn serve(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        use tokio_cron_scheduler::{Job, JobScheduler};
        let (ticks, mut tick_rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut trigger = JobScheduler::new().await?;
        trigger
            .add(Job::new_async("* * * * * *", move |_, _| {
                let ticks = ticks.clone();
                Box::pin(async move {
                    let _ = ticks.try_send(());
                })
            })?)
            .await?;
        trigger.start().await?;
        self.tick().await?;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(()) = tick_rx.recv() => {
                    if let Err(e) = self.tick().await {
                        tracing::error!(error = %format!("{e:#}"), "scheduler tick failed; retrying next second");
                    }
                }
            }
        }
        tracing::info!("stopping: no new fires; waiting for running jobs");
        trigger.shutdown().await?;
        self.wait_idle().await;
        Ok(())
    }
}
