//! Crashes and concurrency (SPEC §4): a process killed at any point is finished by re-running
//! the same command with the same outcome, and two processes closing at once close once.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Backend, Env, assert_report, assert_reports, backends, expected};

fn queued(env: &Env) -> u64 {
    env.status_json()["outbox"]["queued"].as_u64().unwrap_or(0)
}

/// Runs `args` with a failpoint that aborts the process there, as `kill -9` would.
fn crash_at(env: &Env, failpoint: &str, args: &[&str]) {
    let output = env
        .command(args)
        .env("PAYOUT_FAILPOINT", failpoint)
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "failpoint {failpoint} was not reached"
    );
}

#[tokio::test]
async fn a_crash_at_each_step_is_finished_by_the_same_command() {
    for backend in backends() {
        for failpoint in ["ingest-after-file", "run-before-publish"] {
            let env = Env::new(backend).await;
            crash_at(&env, failpoint, &["run", "--period", "2026-10"]);
            env.ok(&["run", "--period", "2026-10"]);
            assert_reports(&env, "2026-10", "draft-2026-10");
        }
        for failpoint in [
            "ingest-after-file",
            "close-before-commit",
            "close-after-commit",
        ] {
            let env = Env::new(backend).await;
            crash_at(&env, failpoint, &["close", "--period", "2026-09"]);
            env.ok(&["close", "--period", "2026-09"]);
            assert_report(
                &env.report("2026-09", "payouts.csv"),
                &expected("close-2026-09/payouts.csv"),
            );
            assert_eq!(
                queued(&env),
                6,
                "{failpoint}: statements queued exactly once ({backend:?})"
            );
            let leftovers: Vec<_> = std::fs::read_dir(&env.reports)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".2026-09.close-") || n.starts_with(".2026-09.draft-"))
                .collect();
            assert!(
                leftovers.is_empty(),
                "{failpoint}: staging left behind: {leftovers:?}"
            );
        }
    }
}

#[tokio::test]
async fn kill_9_at_random_moments_then_rerun_closes_once() {
    let env = Env::new(Backend::Sqlite).await;
    for delay_ms in [5u64, 20, 40, 80, 120] {
        let mut child = env
            .command(&["close", "--period", "2026-09"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    env.ok(&["close", "--period", "2026-09"]);
    assert_report(
        &env.report("2026-09", "payouts.csv"),
        &expected("close-2026-09/payouts.csv"),
    );
    assert_eq!(queued(&env), 6);
    env.add_late_file();
    env.ok(&["close", "--period", "2026-10"]);
    assert_reports(&env, "2026-10", "close-2026-10");
}

#[tokio::test]
async fn two_processes_closing_at_once_close_once() {
    for backend in backends() {
        for _ in 0..3 {
            let env = Env::new(backend).await;
            env.ok(&["status"]); // create the store before the race
            let spawn = || {
                env.command(&["close", "--period", "2026-09"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            };
            let (first, second) = (spawn(), spawn());
            let outputs = [
                first.wait_with_output().unwrap(),
                second.wait_with_output().unwrap(),
            ];
            for output in &outputs {
                assert!(
                    output.status.success(),
                    "{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            let closed = outputs
                .iter()
                .filter(|o| String::from_utf8_lossy(&o.stdout).contains("closed: 5 statement(s)"))
                .count();
            assert_eq!(closed, 1, "exactly one process closes ({backend:?})");
            assert_eq!(queued(&env), 6);
            assert_report(
                &env.report("2026-09", "payouts.csv"),
                &expected("close-2026-09/payouts.csv"),
            );
        }
    }
}
