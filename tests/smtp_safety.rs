//! Fail-closed delivery against real servers: a server that accepts the connection and never
//! answers (or stops answering at DATA) cannot hold `payout send`, and nothing is lost; STARTTLS
//! with a certificate from a private CA trusted through `--smtp-ca-file` (aiosmtpd, see
//! tests/smtp_sink.py); credentials are never sent over an unencrypted connection, and never
//! printed.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::smtp::{SmtpSink, free_port, header};
use common::{Backend, Env};

const PASSWORD: &str = "Sm7pS3cret-never-shown";

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn outbox(env: &Env, status: &str) -> u64 {
    env.status_json()["outbox"][status].as_u64().unwrap_or(0)
}

/// `payout send` to `url` with a 1-second step timeout, a 200 ms first retry delay and up to
/// 5 s of waiting for retries (each unless `extra` sets it); `credentials` sets the environment.
fn send(env: &Env, url: &str, extra: &[&str], credentials: bool) -> Output {
    let mut args = vec!["send", "--smtp-url", url, "--connections", "2"];
    for (flag, value) in [
        ("--smtp-timeout-secs", "1"),
        ("--retry-base-ms", "200"),
        ("--max-retry-wait-secs", "5"),
    ] {
        if !extra.contains(&flag) {
            args.extend_from_slice(&[flag, value]);
        }
    }
    args.extend_from_slice(extra);
    let mut command = env.command(&args);
    command
        .env("PAYOUT_LOG", "debug")
        .env_remove("PAYOUT_SMTP_USERNAME")
        .env_remove("PAYOUT_SMTP_PASSWORD");
    if credentials {
        command
            .env("PAYOUT_SMTP_USERNAME", "mailer")
            .env("PAYOUT_SMTP_PASSWORD", PASSWORD);
    }
    let output = command.output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "the password was shown: {stdout}{stderr}"
    );
    output
}

/// A TCP server that accepts every connection and never says a word (a black-holed relay).
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream); // kept open, never answered
        }
    });
    port
}

/// An SMTP server that answers up to `354` after DATA, reads the message and then never
/// replies (a relay stuck on the end of the data).
fn stuck_after_data_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || serve_until_data(stream));
        }
    });
    port
}

fn serve_until_data(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let _ = stream.write_all(b"220 stuck ESMTP\r\n");
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let command = line.to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-stuck\r\n250 8BITMIME\r\n"
        } else if command.starts_with("DATA") {
            let _ = stream.write_all(b"354 go ahead\r\n");
            // Read the data to its end, then hold the connection without a reply.
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
            }
            std::thread::sleep(Duration::from_secs(30));
            return;
        } else {
            b"250 OK\r\n"
        };
        if stream.write_all(reply).is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_server_that_never_answers_stops_send_within_the_timeout_and_loses_nothing() {
    let env = Env::new(Backend::Sqlite).await;
    env.ok(&["close", "--period", "2026-09"]);
    let port = silent_server();
    let started = Instant::now();
    let output = send(&env, &format!("smtp://127.0.0.1:{port}"), &[], false);
    let elapsed = started.elapsed();
    let (_, stderr) = text(&output);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        elapsed < Duration::from_secs(10),
        "send returned after {elapsed:?}"
    );
    assert!(
        stderr.contains("did not answer with its greeting and EHLO within 1s (smtp_timeout_secs)")
            && stderr.contains("6 message(s) remain queued"),
        "{stderr}"
    );
    assert_eq!(outbox(&env, "queued"), 6);
    assert_eq!(outbox(&env, "failed"), 0);

    // The relay recovers: every message is delivered, the stalled ones after their backoff.
    let sink = SmtpSink::start();
    let output = send(&env, &sink.url(), &[], false);
    assert!(output.status.success(), "{}", text(&output).1);
    assert_eq!(sink.messages().len(), 6);
    assert_eq!(outbox(&env, "sent"), 6);
}

#[tokio::test]
async fn a_server_that_stops_answering_after_the_data_leaves_the_message_queued_for_a_retry() {
    let env = Env::new(Backend::Sqlite).await;
    env.ok(&["close", "--period", "2026-09"]);
    let port = stuck_after_data_server();
    let started = Instant::now();
    let output = send(
        &env,
        &format!("smtp://127.0.0.1:{port}"),
        &["--max-retry-wait-secs", "0", "--retry-base-ms", "60000"],
        false,
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stdout.contains("sent 0, failed 0, retried 6, still queued 6"),
        "{stdout}"
    );
    assert_eq!(outbox(&env, "queued"), 6);
    assert_eq!(outbox(&env, "failed"), 0);
}

/// A private CA and a server certificate for 127.0.0.1 signed by it (openssl CLI), in `dir`.
fn private_ca(dir: &Path) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("the openssl command");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["req", "-x509", "-nodes", "-days", "2"];
    ca.extend_from_slice(&ec);
    ca.extend_from_slice(&[
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=payout test CA",
    ]);
    openssl(&ca);
    let mut request = vec!["req", "-nodes"];
    request.extend_from_slice(&ec);
    request.extend_from_slice(&[
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&request);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
}

#[tokio::test]
async fn starttls_with_a_private_ca_delivers_authenticated_and_encrypted() {
    let env = Env::new(Backend::Sqlite).await;
    env.ok(&["close", "--period", "2026-09"]);
    let certs = tempfile::tempdir().unwrap();
    private_ca(certs.path());
    let (cert, key, ca) = (
        certs.path().join("server.pem"),
        certs.path().join("server.key"),
        certs.path().join("ca.pem"),
    );
    let sink = SmtpSink::start_with(
        free_port(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--auth-user",
            "mailer",
        ],
        &[("SINK_AUTH_PASSWORD", PASSWORD)],
    );
    // Credentials set and no `tls=`: STARTTLS is required, and the certificate must verify.
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let untrusted = send(&env, &url, &[], true);
    let (_, stderr) = text(&untrusted);
    assert!(!untrusted.status.success());
    assert!(
        stderr.contains("STARTTLS") && stderr.contains("certificate"),
        "{stderr}"
    );
    assert!(sink.messages().is_empty(), "nothing sent before TLS");
    assert_eq!(outbox(&env, "queued"), 6, "nothing marked");

    let trusted = send(&env, &url, &["--smtp-ca-file", ca.to_str().unwrap()], true);
    assert!(trusted.status.success(), "{}", text(&trusted).1);
    let messages = sink.messages();
    assert_eq!(messages.len(), 6);
    for message in &messages {
        assert_eq!(header(message, "X-Session-TLS").as_deref(), Some("yes"));
        assert_eq!(header(message, "X-Session-Auth").as_deref(), Some("yes"));
    }
    assert_eq!(outbox(&env, "sent"), 6);
}

#[tokio::test]
async fn credentials_are_never_sent_over_an_unencrypted_connection() {
    let env = Env::new(Backend::Sqlite).await;
    env.ok(&["close", "--period", "2026-09"]);
    let sink = SmtpSink::start(); // plain SMTP, no STARTTLS offered
    let base = sink.url();
    for (url, expected) in [
        (format!("{base}?tls=none"), "over an unencrypted connection"),
        (
            base.clone(),
            "does not offer STARTTLS, which the SMTP URL requires",
        ),
        (
            format!("{base}?tls=opportunistic"),
            "over an unencrypted connection",
        ),
        (format!("{base}?tls=requird"), "tls must be required"),
        (
            format!("smtp://mailer:{PASSWORD}@127.0.0.1:{}", sink.port),
            "credentials are not read from the URL",
        ),
        (
            format!("{base}?password={PASSWORD}"),
            "unknown parameter `password`",
        ),
    ] {
        let output = send(&env, &url, &[], true);
        let (_, stderr) = text(&output);
        assert!(!output.status.success(), "{url}");
        assert!(stderr.contains(expected), "{url}: {stderr}");
    }
    assert!(sink.messages().is_empty(), "nothing was sent");
    assert_eq!(outbox(&env, "queued"), 6, "nothing was marked");
    // Without credentials, plain SMTP is what it was.
    assert!(send(&env, &base, &[], false).status.success());
    assert_eq!(sink.messages().len(), 6);
}
