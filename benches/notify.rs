//! Statement rendering and email delivery throughput: `cargo bench --bench notify`.
//!
//! Generates a program of `PARTNERS` partners (`payout-generate`), closes two periods with the
//! release binary (which renders every statement), then measures in one run:
//! - statements rendered per second (HTML + PDF) on one thread and on every core;
//! - statement emails (HTML + text + PDF attachment) delivered per second by `payout send`
//!   to a local SMTP sink on 1 and on 4 connections.
//!
//! The sink is a minimal SMTP responder in this file (accept everything, count messages), so
//! that it is not the bottleneck being measured; the tests use a real server (aiosmtpd).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use payout::notify::Renderer;
use payout::store::Store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const PARTNERS: u64 = 2_000;
const LINES: u64 = 100_000;

fn payout(dir: &Path, args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_payout"))
        .current_dir(dir)
        .args([
            "--data",
            "data",
            "--reports",
            "reports",
            "--database-url",
            "sqlite://bench.db",
        ])
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "payout {args:?}");
}

/// Accepts SMTP sessions and every message; counts messages.
async fn sink(listener: TcpListener, received: Arc<AtomicU64>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let received = received.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read);
            let _ = write.write_all(b"220 sink ESMTP\r\n").await;
            let mut line = Vec::new();
            loop {
                line.clear();
                if lines.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let command = String::from_utf8_lossy(&line).to_ascii_uppercase();
                let reply: &[u8] = if command.starts_with("EHLO") {
                    b"250-sink\r\n250 8BITMIME\r\n"
                } else if command.starts_with("DATA") {
                    let _ = write.write_all(b"354 go ahead\r\n").await;
                    loop {
                        line.clear();
                        if lines.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == b".\r\n" {
                            break;
                        }
                    }
                    received.fetch_add(1, Ordering::Relaxed);
                    b"250 accepted\r\n"
                } else if command.starts_with("QUIT") {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    return;
                } else {
                    b"250 OK\r\n"
                };
                if write.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let generated = Command::new(env!("CARGO_BIN_EXE_payout-generate"))
        .args([
            "--out",
            data.to_str().unwrap(),
            "--partners",
            &PARTNERS.to_string(),
            "--lines",
            &LINES.to_string(),
        ])
        .output()
        .unwrap();
    assert!(generated.status.success());
    payout(dir.path(), &["close", "--period", "2026-09"]);
    let started = Instant::now();
    payout(dir.path(), &["close", "--period", "2026-10"]);
    let close_seconds = started.elapsed().as_secs_f64();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = runtime.block_on(Store::connect(&url)).unwrap();
    let partners: Vec<String> = std::fs::read_dir(dir.path().join("reports/2026-10/statements"))
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .strip_suffix(".pdf")
                .map(str::to_owned)
        })
        .collect();
    let mut records: Vec<_> = runtime.block_on(async {
        let mut records = Vec::new();
        for partner in &partners {
            records.push(store.statement("2026-10", partner).await.unwrap().unwrap());
        }
        records
    });
    let renderer = Renderer::new().unwrap();
    let started = Instant::now();
    for record in &records {
        renderer.statement(record).unwrap();
    }
    let one_thread = records.len() as f64 / started.elapsed().as_secs_f64();
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    renderer.write_statements(out.path(), &mut records).unwrap();
    let all_cores = records.len() as f64 / started.elapsed().as_secs_f64();

    let received = Arc::new(AtomicU64::new(0));
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(sink(listener, received.clone()));
    let mut delivery = Vec::new();
    for connections in [1, 4] {
        runtime.block_on(async {
            sqlx::query(
                "UPDATE outbox SET status = 'queued', attempts = 0, next_attempt_at_ms = 0",
            )
            .execute(store.pool())
            .await
            .unwrap();
        });
        let before = received.load(Ordering::Relaxed);
        let started = Instant::now();
        payout(
            dir.path(),
            &[
                "send",
                "--smtp-url",
                &format!("smtp://127.0.0.1:{port}"),
                "--connections",
                &connections.to_string(),
            ],
        );
        let seconds = started.elapsed().as_secs_f64();
        let messages = received.load(Ordering::Relaxed) - before;
        delivery.push((connections, messages, messages as f64 / seconds));
    }

    println!("statements: {} partners, {} lines", records.len(), LINES);
    println!("{:<52} {:>12}", "measure", "per second");
    println!(
        "{:<52} {:>12.0}",
        "statements rendered (HTML + PDF), 1 thread", one_thread
    );
    println!(
        "{:<52} {:>12.0}",
        format!(
            "statements rendered (HTML + PDF), {} threads",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
        all_cores
    );
    println!(
        "{:<52} {:>12.0}",
        "close incl. rendering, statements per second",
        records.len() as f64 / close_seconds
    );
    for (connections, messages, rate) in delivery {
        println!(
            "{:<52} {:>12.0}",
            format!("statement emails delivered, {connections} connection(s) ({messages} msgs)"),
            rate
        );
    }
}
