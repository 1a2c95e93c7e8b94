//! Snapshots (insta) of what partners read: statement HTML in English and Korean, and the
//! email bodies of every kind. Review changes with `cargo insta review`.

mod common;

use common::{Backend, Env};
use payout::notify::templates::{Language, Templates};
use serde_json::json;

#[tokio::test]
async fn statement_html_in_english_and_korean() {
    let env = Env::new(Backend::Sqlite).await;
    env.ok(&["close", "--period", "2026-09"]);
    env.add_late_file();
    env.ok(&["close", "--period", "2026-10"]);
    // Payable, Korean payable, ineligible, enrolled after the as-of date (held), debit carried
    // forward, Korean below the threshold.
    for (partner, name) in [
        ("1000001", "Contoso Cloud Distribution"),
        ("1000005", "서울 클라우드 파트너스"),
        ("1000007", "Adventure Works"),
        ("1000014", "Margie's Travel"),
        ("1000015", "Trey Research"),
        ("1000022", "시티 파워 앤 라이트"),
    ] {
        let html = std::fs::read_to_string(
            env.reports
                .join(format!("2026-10/statements/{partner}.html")),
        )
        .unwrap()
        // The issue date is the close's date: today.
        .replace(&chrono::Utc::now().date_naive().to_string(), "[issue date]");
        insta::assert_snapshot!(format!("statement_{partner}"), html);
        let pdf = std::fs::read(
            env.reports
                .join(format!("2026-10/statements/{partner}.pdf")),
        )
        .unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "{partner}.pdf is a PDF");
        let path = env
            .reports
            .join(format!("2026-10/statements/{partner}.pdf"));
        assert_tagged(&path);
        // The glyphs drawn map back to their text (the PDF's ToUnicode map): the name and the
        // HTML's figures can be searched and copied from the PDF.
        let text = pdf_text(&path);
        assert!(text.contains(name), "{partner}.pdf text: {text}");
        assert!(
            text.contains(&format!("{partner}-2026-10")),
            "{partner}.pdf text: {text}"
        );
    }
}

/// The text `pdftotext` (poppler-utils) reads from a PDF.
fn pdf_text(pdf: &std::path::Path) -> String {
    let output = std::process::Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap_or_else(|e| {
            panic!("pdftotext (scripts/install-test-deps.sh installs poppler-utils): {e}")
        });
    assert!(output.status.success(), "pdftotext {}", pdf.display());
    String::from_utf8(output.stdout).expect("pdftotext writes UTF-8")
}

/// `pdfinfo` (poppler-utils, installed by `scripts/install-test-deps.sh`) says the PDF is
/// tagged. A missing pdfinfo fails the test: a skipped check would pass unseen (the unit test
/// `statements_are_tagged_pdf_with_their_language` checks the structure tree as well).
fn assert_tagged(pdf: &std::path::Path) {
    match std::process::Command::new("pdfinfo").arg(pdf).output() {
        Ok(output) => {
            let info = String::from_utf8_lossy(&output.stdout);
            assert!(
                info.lines()
                    .any(|l| l.starts_with("Tagged:") && l.ends_with("yes")),
                "{}: {info}",
                pdf.display()
            );
        }
        Err(e) => panic!("pdfinfo (scripts/install-test-deps.sh installs poppler-utils): {e}"),
    }
}

#[test]
fn email_bodies() {
    let templates = Templates::load();
    let statement = json!({
        "recipient_name": "Dana Lee", "partner_name": "Contoso Cloud Distribution", "partner_id": "1000001",
        "program_name": "CSP Indirect Provider Incentive", "period": "2026-10", "payable": "1,307.74 USD",
        "carried": "0.00 USD", "held": "0.00 USD", "status_text": "Payable: this amount will be paid to your validated bank account.",
        "holds": [],
    });
    let invitation = json!({
        "partner_name": "Woodgrove Partners", "partner_id": "1000011", "program_name": "CSP Direct Reseller Incentive",
    });
    let migration = json!({
        "partner_name": "서울 클라우드 파트너스", "partner_id": "1000005", "program_name": "CSP Indirect Provider Incentive",
        "wave": "korea", "opens_on": "2026-11-02", "reminder": 0,
    });
    let reminder = json!({
        "partner_name": "Wide World Importers", "partner_id": "1000010", "program_name": "CSP Indirect Provider Incentive",
        "wave": "pilot-accounts", "opens_on": "2026-11-16", "reminder": 2,
    });
    for (name, kind, language, context) in [
        ("statement_en", "statement", Language::En, &statement),
        ("statement_ko", "statement", Language::Ko, &statement),
        ("invitation_en", "invitation", Language::En, &invitation),
        ("invitation_ko", "invitation", Language::Ko, &invitation),
        ("migration_ko", "migration", Language::Ko, &migration),
        ("reminder_en", "migration", Language::En, &reminder),
    ] {
        let body = templates.render_email(kind, language, context).unwrap();
        insta::assert_snapshot!(
            format!("email_{name}"),
            format!(
                "Subject: {}\n\n{}\n----- HTML -----\n{}",
                body.subject, body.text, body.html
            )
        );
    }
}

#[tokio::test]
async fn the_same_statement_renders_to_the_same_pdf_bytes_in_another_process_and_store() {
    let mut rendered = Vec::new();
    for backend in common::backends() {
        let env = Env::new(backend).await;
        env.ok(&["close", "--period", "2026-09"]);
        let dir = env.reports.join("2026-09/statements");
        let mut pdfs: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "pdf"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        pdfs.sort();
        assert!(pdfs.len() >= 5, "statements were rendered: {}", pdfs.len());
        rendered.push(pdfs);
    }
    // A second store of the same backend, closed by another process, when only SQLite is tested.
    if rendered.len() == 1 {
        let env = Env::new(Backend::Sqlite).await;
        env.ok(&["close", "--period", "2026-09"]);
        let first = &rendered[0];
        for (name, bytes) in first {
            let again = std::fs::read(env.reports.join("2026-09/statements").join(name)).unwrap();
            assert!(&again == bytes, "{name} differs between two closes");
        }
    } else {
        assert!(
            rendered[0] == rendered[1],
            "statements differ between SQLite and PostgreSQL"
        );
    }
}
