//! A statement is rendered once, at close: the PDF filed in `reports/<P>/statements/` is the
//! one emailed, byte for byte (received by a real SMTP server, aiosmtpd), checked against the
//! SHA-256 the close recorded; a changed or missing file fails that message for good, it is
//! never rendered again.

mod common;

use std::collections::BTreeMap;

use common::smtp::{SmtpSink, header, pdf_attachment};
use common::{Env, backends};

#[tokio::test]
async fn the_emailed_statement_is_the_filed_pdf_byte_for_byte_and_a_changed_one_is_refused() {
    for backend in backends() {
        let env = Env::new(backend).await;
        env.ok(&["close", "--period", "2026-09"]);
        let statements = env.reports.join("2026-09/statements");
        // Northwind's filed PDF is changed after the close, Consolidated's is removed.
        let tampered = statements.join("1000006.pdf");
        let mut bytes = std::fs::read(&tampered).unwrap();
        let last = bytes.len() - 10;
        bytes[last] ^= 0x20;
        std::fs::write(&tampered, bytes).unwrap();
        std::fs::remove_file(statements.join("1000024.pdf")).unwrap();

        let sink = SmtpSink::start();
        let output = env.payout(&[
            "send",
            "--smtp-url",
            &sink.url(),
            "--retry-base-ms",
            "20",
            "--max-retry-wait-secs",
            "5",
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(stderr.contains("2 message(s) failed"), "{stderr}");

        let messages = sink.messages();
        assert_eq!(messages.len(), 4, "{backend:?}");
        let mut partners = BTreeMap::new();
        for message in &messages {
            let (name, pdf) = pdf_attachment(message).unwrap_or_else(|| {
                let at = message.find("application/pdf").unwrap_or(0);
                panic!(
                    "no PDF attachment: {}",
                    &message[at.saturating_sub(200)..][..600]
                )
            });
            // statement-<partner>-<period>.pdf
            let partner = name
                .strip_prefix("statement-")
                .and_then(|n| n.strip_suffix("-2026-09.pdf"))
                .unwrap_or_else(|| panic!("attachment name {name}"))
                .to_owned();
            let filed = std::fs::read(statements.join(format!("{partner}.pdf"))).unwrap();
            assert!(pdf.starts_with(b"%PDF-"), "{name}");
            assert!(
                pdf == filed,
                "{name}: the attachment differs from the filed PDF ({backend:?})"
            );
            *partners.entry(partner).or_insert(0) += 1;
            assert!(header(message, "X-Envelope-To").is_some());
        }
        assert_eq!(
            partners.keys().map(String::as_str).collect::<Vec<_>>(),
            ["1000001", "1000010", "1000021"],
            "{backend:?}"
        );

        let status = env.status_json();
        let failures: BTreeMap<String, String> = status["failed_messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["partner_id"].as_str().unwrap_or_default().to_owned()
                        + f["recipient"].as_str().unwrap(),
                    f["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(failures.len(), 2, "{failures:?}");
        let reasons: Vec<&String> = failures.values().collect();
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("1000006.pdf has changed since the close")),
            "{failures:?}"
        );
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("1000024.pdf is missing; it is not rendered again")),
            "{failures:?}"
        );
    }
}

#[tokio::test]
async fn statements_not_published_yet_wait_for_the_close_to_finish() {
    let env = Env::new(common::Backend::Sqlite).await;
    env.ok(&["close", "--period", "2026-09"]);
    // As after a crash between the close's commit and the rename that publishes its reports.
    let statements = env.reports.join("2026-09/statements");
    let aside = env.reports.join("statements-aside");
    std::fs::rename(&statements, &aside).unwrap();
    let sink = SmtpSink::start();
    let send = |base_ms: &str, wait: &str| {
        env.payout(&[
            "send",
            "--smtp-url",
            &sink.url(),
            "--retry-base-ms",
            base_ms,
            "--max-retry-wait-secs",
            wait,
        ])
    };
    // Tried again every 50 ms for 2 s: far more than the 8 attempts a message has, and still
    // none fails, because waiting for the close is not an attempt.
    let output = send("50", "2");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("sent 0, failed 0,"), "{stdout}");
    assert!(stdout.contains("still queued 6"), "{stdout}");
    let retried: u64 = stdout
        .split("retried ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no retried count in {stdout}"));
    assert!(retried > 6 * 8, "only {retried} tries in 2 s: {stdout}");
    assert!(sink.messages().is_empty());
    std::fs::rename(&aside, &statements).unwrap();
    assert!(send("2000", "5").status.success());
    assert_eq!(sink.messages().len(), 6);
}

/// Issue 14: a closed statement row keeps its billing month and, when converted, the FX rate
/// applied and its period, on both backends; the filed HTML shows them.
#[tokio::test]
async fn closed_statement_rows_keep_their_billing_month_and_fx_rate() {
    use payout::store::Store;
    for backend in backends() {
        let env = Env::new(backend).await;
        env.ok(&["close", "--period", "2026-09"]);
        env.add_late_file();
        env.ok(&["close", "--period", "2026-10"]);
        let store = Store::connect(&env.database_url).await.unwrap();
        let record = store
            .statement("2026-10", "1000001")
            .await
            .unwrap()
            .expect("1000001 has a statement for 2026-10");
        let rows: Vec<_> = record
            .lines
            .iter()
            .map(|l| {
                (
                    l.booking.as_str(),
                    l.line_currency.as_str(),
                    l.billing_month.as_deref(),
                    l.fx_rate.as_deref(),
                    l.fx_period.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (
                    "earned",
                    "EUR",
                    Some("2026-10"),
                    Some("1.0725"),
                    Some("2026-10")
                ),
                ("earned", "USD", Some("2026-10"), None, None),
                ("earned", "USD", Some("2026-10"), None, None),
                ("adjustment", "USD", Some("2026-09"), None, None),
            ],
            "{backend:?}"
        );
        let html = env.report("2026-10", "statements/1000001.html");
        assert!(html.contains("1.0725 (2026-10)"), "{backend:?}");
        assert!(html.contains("billed 2026-09"), "{backend:?}");
    }
}
