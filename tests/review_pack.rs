//! The finance review pack (issue 15) through the real binary and the real store (SQLite and
//! PostgreSQL): `changes.csv` between drafts with the cause of each change, `manifest.json`
//! in draft and final folders, and the sign-off of a close.

mod common;

use common::{Env, backends};
use sha2::{Digest, Sha256};

/// A second October file: one more m365 line for Fabrikam (1000 EUR × 0.04 = 40.00).
const EXTRA_REVENUE: &str = "record_id,partner_id,customer_id,product_category,billing_month,amount,currency\n\
X-1,1000002,C-900,m365,2026-10,1000.00,EUR\n";

/// A third October file, arriving after the second draft was reviewed.
const LATE_ARRIVAL: &str = "record_id,partner_id,customer_id,product_category,billing_month,amount,currency\n\
Y-1,1000001,C-901,m365,2026-10,100.00,USD\n";

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

fn manifest(env: &Env, period: &str) -> serde_json::Value {
    serde_json::from_str(&env.report(period, "manifest.json")).unwrap()
}

fn sha256_of(path: &std::path::Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// (partner_id, column, before, after, cause) of every changes.csv row.
fn changes(env: &Env, period: &str) -> Vec<(String, String, String, String, String)> {
    let text = env.report(period, "changes.csv");
    assert!(
        text.starts_with("partner_id,partner_name,column,before,after,cause\n"),
        "{text}"
    );
    csv_rows(&text)
        .into_iter()
        .map(|r| {
            (
                r[0].clone(),
                r[2].clone(),
                r[3].clone(),
                r[4].clone(),
                r[5].clone(),
            )
        })
        .collect()
}

fn row<'a>(
    rows: &'a [(String, String, String, String, String)],
    partner: &str,
    column: &str,
) -> &'a (String, String, String, String, String) {
    rows.iter()
        .find(|r| r.0 == partner && r.1 == column)
        .unwrap_or_else(|| panic!("no change of {partner} {column} in {rows:#?}"))
}

#[tokio::test]
async fn a_second_draft_lists_each_change_with_its_cause_and_the_close_records_who_approved() {
    for backend in backends() {
        let env = Env::new(backend).await;
        env.ok(&["close", "--period", "2026-09"]);

        // The first draft compares with nothing.
        let first = env.ok(&["run", "--period", "2026-10"]);
        assert!(first.contains("0 partner(s) changed"), "{first}");
        assert!(changes(&env, "2026-10").is_empty());
        let draft = manifest(&env, "2026-10");
        assert_eq!(draft["kind"], "draft");
        assert_eq!(draft["period"], "2026-10");
        assert!(draft["close_id"].is_null());
        assert!(draft["changes"]["compared_with"].is_null());
        assert_eq!(draft["code_version"], env!("CARGO_PKG_VERSION"));
        let revenue = draft["revenue_files"].as_array().unwrap();
        let billing = revenue
            .iter()
            .find(|f| f["file"] == "revenue/2026-10-billing.csv")
            .expect("the billing file is listed");
        assert_eq!(
            billing["sha256"].as_str().unwrap(),
            sha256_of(&env.data.join("revenue/2026-10-billing.csv"))
        );
        let partners_csv = draft["master_data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["file"] == "partners.csv")
            .expect("partners.csv is listed");
        assert_eq!(
            partners_csv["sha256"].as_str().unwrap(),
            sha256_of(&env.data.join("partners.csv"))
        );
        assert_eq!(draft["master_data_sha256"].as_str().unwrap().len(), 64);
        let usd = draft["totals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["currency"] == "USD")
            .unwrap()
            .clone();
        let payouts = csv_rows(&env.report("2026-10", "payouts.csv"));
        let usd_payable: rust_decimal::Decimal = payouts
            .iter()
            .filter(|r| r[4] == "USD")
            .map(|r| r[9].parse::<rust_decimal::Decimal>().unwrap())
            .sum();
        assert_eq!(usd["payable"].as_str().unwrap(), usd_payable.to_string());
        assert_eq!(
            usd["partners"].as_u64().unwrap(),
            payouts.iter().filter(|r| r[4] == "USD").count() as u64
        );
        let first_run_id = draft["run_id"].as_str().unwrap().to_owned();

        // A new revenue file, a master-data change and a retried row resolved.
        env.write_data("revenue/2026-10-extra.csv", EXTRA_REVENUE);
        env.replace_in_data(
            "profiles.csv",
            "1000012,incomplete,validated",
            "1000012,complete,validated",
        );
        env.append_data(
            "partners.csv",
            "1000099,Tailwind Traders,direct,US,USD,ap@tailwind.example,2025-01-01,false\n",
        );
        env.append_data(
            "agreements.csv",
            "1000099,mpn,active,2020-01-01,\n1000099,reseller,active,2024-01-01,\n",
        );
        env.append_data("profiles.csv", "1000099,complete,validated\n");
        let second = env.ok(&["run", "--period", "2026-10"]);
        assert!(second.contains("3 partner(s) changed"), "{second}");
        let rows = changes(&env, "2026-10");

        let fabrikam = row(&rows, "1000002", "earned");
        assert_eq!(
            (fabrikam.2.as_str(), fabrikam.3.as_str()),
            ("590.24", "630.24")
        );
        assert_eq!(
            fabrikam.4,
            "new revenue file(s): revenue/2026-10-extra.csv (+1 line(s))"
        );
        assert_eq!(row(&rows, "1000002", "payable").3, "630.24");

        let coho = row(&rows, "1000012", "status");
        assert_eq!((coho.2.as_str(), coho.3.as_str()), ("HELD", "PAYABLE"));
        assert_eq!(
            coho.4,
            "master-data change: profile tax_profile (incomplete -> complete)"
        );
        let coho_held = row(&rows, "1000012", "held");
        assert_eq!(
            (coho_held.2.as_str(), coho_held.3.as_str()),
            ("160.00", "0.00")
        );
        assert_eq!(row(&rows, "1000012", "payable").3, "160.00");
        assert_eq!(
            row(&rows, "1000012", "hold_reasons").2,
            "TAX_PROFILE_INCOMPLETE"
        );

        let tailwind = row(&rows, "1000099", "earned");
        assert_eq!((tailwind.2.as_str(), tailwind.3.as_str()), ("", "15.00"));
        assert_eq!(
            tailwind.4,
            "retried rows resolved (1); master-data change: partner added"
        );
        assert_eq!(row(&rows, "1000099", "status").3, "BELOW_THRESHOLD");
        let partners: std::collections::BTreeSet<&str> =
            rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            partners.into_iter().collect::<Vec<_>>(),
            ["1000002", "1000012", "1000099"]
        );
        let second_manifest = manifest(&env, "2026-10");
        assert_eq!(second_manifest["changes"]["compared_with"], first_run_id);
        assert_eq!(second_manifest["changes"]["changed_partners"], 3);

        let status = env.status_json();
        let october = status["periods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["period"] == "2026-10")
            .unwrap()
            .clone();
        assert_eq!(october["changed_partners"], 3);
        assert!(october["approval"].is_null());

        // A file arrives after the review: the close refuses and points to changes.csv.
        env.write_data("revenue/2026-10-late-arrival.csv", LATE_ARRIVAL);
        let refused = env.payout(&["close", "--period", "2026-10", "--approved-by", "Ana Díaz"]);
        assert!(!refused.status.success());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("review its changes.csv")
                && stderr.contains("2026-10-late-arrival.csv"),
            "{stderr}"
        );
        env.ok(&["run", "--period", "2026-10"]);
        let rows = changes(&env, "2026-10");
        assert_eq!(
            row(&rows, "1000001", "earned").4,
            "new revenue file(s): revenue/2026-10-late-arrival.csv (+1 line(s))"
        );
        let reviewed = manifest(&env, "2026-10");
        // Three drafts: the partner rows of the first are gone, the last two kept.
        let store = payout::store::Store::connect(&env.database_url)
            .await
            .unwrap();
        let kept: Vec<String> =
            sqlx::query("SELECT DISTINCT run_id FROM draft_partners ORDER BY run_id")
                .fetch_all(store.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| sqlx::Row::get(r, 0))
                .collect();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(!kept.contains(&first_run_id));
        assert!(kept.contains(&reviewed["run_id"].as_str().unwrap().to_owned()));

        // Approval required: a close without --approved-by is refused, with it recorded.
        let unapproved = env
            .command(&["close", "--period", "2026-10"])
            .env("PAYOUT_REQUIRE_APPROVAL", "true")
            .output()
            .unwrap();
        assert!(!unapproved.status.success());
        assert!(
            String::from_utf8_lossy(&unapproved.stderr).contains("--approved-by NAME"),
            "{}",
            String::from_utf8_lossy(&unapproved.stderr)
        );
        let closed = env
            .command(&[
                "close",
                "--period",
                "2026-10",
                "--approved-by",
                " Ana Díaz ",
            ])
            .env("PAYOUT_REQUIRE_APPROVAL", "true")
            .output()
            .unwrap();
        assert!(
            closed.status.success(),
            "{}",
            String::from_utf8_lossy(&closed.stderr)
        );
        let last = manifest(&env, "2026-10");
        assert_eq!(last["kind"], "final");
        assert!(last["close_id"].is_string());
        assert_eq!(last["changes"]["compared_with"], reviewed["run_id"]);
        assert_eq!(last["changes"]["changed_partners"], 0);
        assert!(
            changes(&env, "2026-10").is_empty(),
            "the final is the reviewed draft"
        );
        assert_eq!(last["approval"]["approved_by"], "Ana Díaz");
        assert_eq!(last["approval"]["draft_run_id"], reviewed["run_id"]);
        assert_eq!(
            last["approval"]["draft_fingerprint"],
            reviewed["fingerprint"]
        );
        assert_eq!(last["totals"], reviewed["totals"]);

        let status = env.status_json();
        let october = status["periods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["period"] == "2026-10")
            .unwrap()
            .clone();
        assert_eq!(october["state"], "closed");
        assert_eq!(october["approval"]["approved_by"], "Ana Díaz");
        assert_eq!(
            october["approval"]["draft_fingerprint"],
            reviewed["fingerprint"]
        );
        assert_eq!(october["changed_partners"], 0);
        let text = env.ok(&["status"]);
        assert!(text.contains("approved by Ana Díaz at "), "{text}");
    }
}

#[tokio::test]
async fn approving_needs_a_draft_and_a_name() {
    for backend in backends() {
        let env = Env::new(backend).await;
        let refused = env.payout(&["close", "--period", "2026-09", "--approved-by", "Ana"]);
        assert!(!refused.status.success());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("no draft to approve"), "{stderr}");
        env.ok(&["run", "--period", "2026-09"]);
        let empty = env.payout(&["close", "--period", "2026-09", "--approved-by", "  "]);
        assert!(!empty.status.success());
        assert!(
            String::from_utf8_lossy(&empty.stderr).contains("the name is empty"),
            "{}",
            String::from_utf8_lossy(&empty.stderr)
        );
        // Nothing was closed by the refusals; without the setting no approval is needed.
        env.ok(&["close", "--period", "2026-09"]);
        let status = env.status_json();
        let september = &status["periods"][0];
        assert_eq!(september["state"], "closed");
        assert!(september["approval"].is_null());
    }
}

/// A workbook cell as its CSV text: numbers with the decimals the CSV shows, text as is.
fn cell_text(cell: &calamine::Data, csv_text: &str) -> String {
    use calamine::Data;
    match cell {
        Data::Empty => String::new(),
        Data::String(text) => text.clone(),
        Data::Float(value) => {
            let places = csv_text.split_once('.').map_or(0, |(_, d)| d.len());
            format!("{value:.places$}")
        }
        Data::Int(value) => value.to_string(),
        other => panic!("unexpected cell {other:?}"),
    }
}

#[tokio::test]
async fn the_workbook_reads_back_as_the_csv_reports_with_numbers_as_numbers() {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    for backend in backends() {
        let env = Env::new(backend).await;
        env.ok(&["run", "--period", "2026-10"]);
        let payouts_csv = env.report("2026-10", "payouts.csv");
        // payable_if_resolved, worked out by hand in tests/expected/README.md.
        let if_resolved: Vec<(String, String, String)> = csv_rows(&payouts_csv)
            .into_iter()
            .map(|r| (r[0].clone(), r[14].clone(), r[16].clone()))
            .collect();
        for (partner, eligible, figure) in [
            ("1000011", "true", "300.00"),
            ("1000012", "true", "160.00"),
            ("1000014", "true", "0.00"),
            ("1000007", "false", "300.00"),
            ("1000008", "false", "240.00"),
            ("1000023", "false", "0.00"),
        ] {
            assert!(
                if_resolved.contains(&(partner.into(), eligible.into(), figure.into())),
                "{partner}: {if_resolved:?}"
            );
        }
        assert!(!payouts_csv.starts_with('\u{feff}'), "no BOM by default");
        let mut workbook: Xlsx<_> =
            open_workbook(env.reports.join("2026-10/payouts.xlsx")).unwrap();
        for (sheet, file) in [
            ("payouts", "payouts.csv"),
            ("eligibility", "eligibility.csv"),
            ("exceptions", "exceptions.csv"),
            ("summary", "summary.csv"),
            ("changes", "changes.csv"),
        ] {
            let range = workbook.worksheet_range(sheet).unwrap();
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(env.report("2026-10", file).into_bytes().as_slice())
                .into_records()
                .map(|r| r.unwrap().iter().map(str::to_owned).collect::<Vec<_>>())
                .collect::<Vec<_>>();
            let rows: Vec<Vec<String>> = range
                .rows()
                .enumerate()
                .map(|(at, row)| {
                    row.iter()
                        .enumerate()
                        .map(|(col, cell)| {
                            let csv_text = reader
                                .get(at)
                                .and_then(|r| r.get(col))
                                .map_or("", String::as_str);
                            cell_text(cell, csv_text)
                        })
                        .collect()
                })
                .collect();
            // Every column of the CSV is in the sheet: the padding below only fills the cells a
            // CSV row leaves out, it never cuts a column the workbook lacks.
            assert_eq!(
                rows.first().map(Vec::len),
                reader.first().map(Vec::len),
                "sheet {sheet}: the workbook and its CSV have different columns ({backend:?})"
            );
            reader
                .iter_mut()
                .for_each(|r| r.resize(rows[0].len(), String::new()));
            assert_eq!(rows, reader, "sheet {sheet} ({backend:?})");
            let formulas = workbook.worksheet_formula(sheet).unwrap();
            assert!(
                formulas.cells().all(|(_, _, f)| f.is_empty()),
                "sheet {sheet} has a formula"
            );
        }
        let payouts = workbook.worksheet_range("payouts").unwrap();
        // Money is numeric, ids and names are text (the `=` name included, never a formula).
        assert!(matches!(payouts.get((1, 0)), Some(Data::String(id)) if id == "1000001"));
        assert!(matches!(payouts.get((1, 5)), Some(Data::Float(v)) if (*v - 1207.74).abs() < 1e-9));
        let hyperlink = payouts
            .rows()
            .find(|r| matches!(&r[0], Data::String(id) if id == "1000016"))
            .unwrap();
        assert_eq!(hyperlink[1], Data::String("'=HYPERLINK Corp".into()));
        let eligibility = workbook.worksheet_range("eligibility").unwrap();
        assert!(matches!(
            eligibility.get((1, 5)),
            Some(Data::Float(_) | Data::Int(_))
        ));

        // Opt-in byte-order mark.
        env.write_data("revenue/2026-10-extra.csv", EXTRA_REVENUE);
        env.ok(&["--csv-bom", "run", "--period", "2026-10"]);
        for file in ["payouts.csv", "changes.csv", "summary.csv"] {
            assert!(
                env.report("2026-10", file).starts_with('\u{feff}'),
                "{file}"
            );
        }
        let mut workbook: Xlsx<_> =
            open_workbook(env.reports.join("2026-10/payouts.xlsx")).unwrap();
        let payouts = workbook.worksheet_range("payouts").unwrap();
        assert_eq!(
            payouts.get((0, 0)),
            Some(&Data::String("partner_id".into()))
        );
    }
}
