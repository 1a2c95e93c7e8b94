//! `changes.csv` (issue 15): one row per (partner, column) whose `payouts.csv` value differs
//! from the previous published draft of the period, with the cause: new revenue file(s),
//! retried rows resolved, a master-data change (with the field), a rate-table or FX change, a
//! closed period's late lines, or another period closed. Pure: both sides are snapshots handed
//! in (`domain::review`), never read back from an earlier report folder, which may be gone.

use std::collections::{BTreeMap, HashMap};

use crate::domain::master::MasterData;
use crate::domain::review::PartnerSnapshot;
use crate::earnings::PeriodComputation;

/// The `payouts.csv` columns after `partner_id`, in order: what `PartnerSnapshot::payout_cells`
/// holds and what a `changes.csv` row's `column` names.
pub const PAYOUT_CELL_COLUMNS: [&str; 13] = [
    "partner_name",
    "program_id",
    "period",
    "currency",
    "earned",
    "adjustments",
    "released",
    "carried_in",
    "payable",
    "carried",
    "held",
    "status",
    "hold_reasons",
];

/// The position of `adjustments` in `PAYOUT_CELL_COLUMNS`.
const ADJUSTMENTS: usize = 5;

/// The header of `changes.csv`.
pub const CHANGES_HEADER: [&str; 6] = [
    "partner_id",
    "partner_name",
    "column",
    "before",
    "after",
    "cause",
];

/// What changed in the inputs and the store between the previous draft and this computation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputChanges {
    /// Revenue files (by name) this computation saw that the previous draft did not.
    pub new_revenue_files: Vec<String>,
    /// Retried rows resolved since the previous draft, per partner.
    pub retried_rows: BTreeMap<String, u64>,
    /// Master-data files whose content changed (`programs.toml`, `fx_rates.csv`, …).
    pub changed_master_files: Vec<String>,
    /// Another period was closed since the previous draft (the balances moved).
    pub period_closed: bool,
}

/// One row of `changes.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    pub partner_id: String,
    pub partner_name: String,
    pub column: &'static str,
    pub before: String,
    pub after: String,
    pub cause: String,
}

/// Each partner's master data, field by field, as `changes.csv` names them.
pub fn master_facts(master: &MasterData, partner_id: &str) -> BTreeMap<String, String> {
    let mut facts = BTreeMap::new();
    let Some(partner) = master.partners.get(partner_id) else {
        return facts;
    };
    facts.insert(
        "partner partner_type".into(),
        partner.partner_type.as_str().into(),
    );
    facts.insert(
        "partner payout_currency".into(),
        partner.payout_currency.code().into(),
    );
    facts.insert(
        "enrolment enrolled_on".into(),
        partner
            .enrolled_on
            .map(|d| d.to_string())
            .unwrap_or_default(),
    );
    let profile = master.profile(partner_id);
    facts.insert("profile tax_profile".into(), profile.tax.as_str().into());
    facts.insert(
        "profile payment_profile".into(),
        profile.payment.as_str().into(),
    );
    let validity = |from: chrono::NaiveDate, to: Option<chrono::NaiveDate>| {
        format!("{from}..{}", to.map(|d| d.to_string()).unwrap_or_default())
    };
    let mut agreements: Vec<String> = master
        .agreements
        .get(partner_id)
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "{} {} {}",
                a.kind.as_str(),
                a.status.as_str(),
                validity(a.validity.valid_from, a.validity.valid_to)
            )
        })
        .collect();
    agreements.sort();
    facts.insert("agreement".into(), agreements.join("; "));
    let mut competencies: Vec<String> = master
        .competencies
        .get(partner_id)
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{} {}",
                c.competency,
                validity(c.validity.valid_from, c.validity.valid_to)
            )
        })
        .collect();
    competencies.sort();
    facts.insert("competency".into(), competencies.join("; "));
    facts
}

/// Every partner of the computation (each `eligibility.csv` row, and each `payouts.csv` row) as
/// this report folder shows it, for the next draft to compare with.
pub fn snapshots(computation: &PeriodComputation, master: &MasterData) -> Vec<PartnerSnapshot> {
    let period = computation.period.to_string();
    let mut by_partner: BTreeMap<&str, PartnerSnapshot> = BTreeMap::new();
    for row in &computation.eligibility {
        let name = master
            .partners
            .get(&row.partner_id)
            .map_or("", |p| p.name.as_str());
        by_partner.insert(
            row.partner_id.as_str(),
            PartnerSnapshot {
                partner_id: row.partner_id.clone(),
                partner_name: super::text_cell(name).into_owned(),
                payout_cells: None,
                own_lines: row.revenue_lines,
                master_facts: master_facts(master, &row.partner_id),
            },
        );
    }
    for row in &computation.payouts {
        let mut cells = super::payout_cells(row, &period);
        let partner_id = cells.remove(0);
        let snapshot = by_partner
            .entry(row.partner_id.as_str())
            .or_insert_with(|| PartnerSnapshot {
                partner_id,
                partner_name: cells[0].clone(),
                payout_cells: None,
                own_lines: 0,
                master_facts: master_facts(master, &row.partner_id),
            });
        snapshot.payout_cells = Some(cells);
    }
    by_partner.into_values().collect()
}

/// The rows of `changes.csv`: `after` compared with `before` (the previous published draft;
/// `None` for the first draft of a period, which lists nothing). Sorted by partner id, then
/// column order.
pub fn changes(
    before: Option<&[PartnerSnapshot]>,
    after: &[PartnerSnapshot],
    inputs: &InputChanges,
) -> Vec<ChangeRow> {
    let Some(before) = before else {
        return Vec::new();
    };
    let before_by_id: HashMap<&str, &PartnerSnapshot> =
        before.iter().map(|s| (s.partner_id.as_str(), s)).collect();
    let after_by_id: HashMap<&str, &PartnerSnapshot> =
        after.iter().map(|s| (s.partner_id.as_str(), s)).collect();
    let mut ids: Vec<&str> = before_by_id
        .keys()
        .chain(after_by_id.keys())
        .copied()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut rows = Vec::new();
    for id in ids {
        let (old, new) = (before_by_id.get(id).copied(), after_by_id.get(id).copied());
        let cells = |s: Option<&PartnerSnapshot>| s.and_then(|s| s.payout_cells.clone());
        let (old_cells, new_cells) = (cells(old), cells(new));
        if old_cells == new_cells {
            continue;
        }
        let differing: Vec<usize> = (0..PAYOUT_CELL_COLUMNS.len())
            .filter(|&i| cell(&old_cells, i) != cell(&new_cells, i))
            .collect();
        // A row that appears or goes with zero adjustments books no late lines.
        let is_zero = |text: &str| text.bytes().all(|b| b == b'0' || b == b'.');
        let adjustments_changed = differing.contains(&ADJUSTMENTS)
            && !(is_zero(cell(&old_cells, ADJUSTMENTS)) && is_zero(cell(&new_cells, ADJUSTMENTS)));
        let cause = cause(old, new, adjustments_changed, inputs);
        let partner_name = new
            .or(old)
            .map_or(String::new(), |s| s.partner_name.clone());
        for i in differing {
            rows.push(ChangeRow {
                partner_id: id.to_owned(),
                partner_name: partner_name.clone(),
                column: PAYOUT_CELL_COLUMNS[i],
                before: cell(&old_cells, i).to_owned(),
                after: cell(&new_cells, i).to_owned(),
                cause: cause.clone(),
            });
        }
    }
    rows
}

fn cell(cells: &Option<Vec<String>>, at: usize) -> &str {
    cells
        .as_ref()
        .and_then(|c| c.get(at))
        .map_or("", String::as_str)
}

/// At most this many new file names in a `cause` cell; the rest are counted ("and 795 more"),
/// so a cell stays readable and within a spreadsheet cell's limit however many files arrive.
const FILES_NAMED: usize = 5;

fn file_list(files: &[String]) -> String {
    let mut text = files
        .iter()
        .take(FILES_NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > FILES_NAMED {
        text.push_str(&format!(" and {} more", files.len() - FILES_NAMED));
    }
    text
}
/// What changed for one partner, most specific first, `; `-joined.
fn cause(
    old: Option<&PartnerSnapshot>,
    new: Option<&PartnerSnapshot>,
    adjustments_changed: bool,
    inputs: &InputChanges,
) -> String {
    let mut causes = Vec::new();
    let partner_id = new.or(old).map_or("", |s| s.partner_id.as_str());
    let retried = inputs.retried_rows.get(partner_id).copied().unwrap_or(0);
    if retried > 0 {
        causes.push(format!("retried rows resolved ({retried})"));
    }
    let own = |s: Option<&PartnerSnapshot>| s.map_or(0, |s| s.own_lines);
    let added_lines = own(new).saturating_sub(own(old));
    let files = file_list(&inputs.new_revenue_files);
    if added_lines > retried && !files.is_empty() {
        causes.push(format!(
            "new revenue file(s): {files} (+{added_lines} line(s))"
        ));
    }
    if adjustments_changed && (retried == 0 || !files.is_empty()) {
        causes.push("closed period's late lines (booked as adjustments)".to_owned());
    }
    match (old, new) {
        (None, Some(_)) => causes.push("master-data change: partner added".to_owned()),
        (Some(_), None) => causes.push("master-data change: partner removed".to_owned()),
        (Some(old), Some(new)) => {
            for (field, after) in &new.master_facts {
                let before = old.master_facts.get(field).map_or("", String::as_str);
                if before != after {
                    causes.push(format!(
                        "master-data change: {field} ({} -> {})",
                        shown(before),
                        shown(after)
                    ));
                }
            }
            for field in old.master_facts.keys() {
                if !new.master_facts.contains_key(field) {
                    causes.push(format!("master-data change: {field} removed"));
                }
            }
        }
        (None, None) => {}
    }
    // What changed for everyone explains a partner's change only when nothing of its own did.
    if causes.is_empty() {
        for file in &inputs.changed_master_files {
            match file.as_str() {
                "programs.toml" => causes.push("rate-table change (programs.toml)".to_owned()),
                "fx_rates.csv" => causes.push("FX rate change (fx_rates.csv)".to_owned()),
                _ => {}
            }
        }
        if inputs.period_closed {
            causes
                .push("another period was closed since the previous draft (balances moved)".into());
        }
    }
    if causes.is_empty() {
        causes.push("the stored revenue or rejections changed".to_owned());
    }
    causes.join("; ")
}

fn shown(value: &str) -> &str {
    if value.is_empty() { "none" } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_columns_are_the_spec_columns_of_payouts_csv_after_partner_id() {
        assert_eq!(
            &super::super::PAYOUTS_HEADER[1..14],
            &PAYOUT_CELL_COLUMNS[..]
        );
    }

    #[test]
    fn a_cause_names_at_most_five_new_files_and_counts_the_rest() {
        let files: Vec<String> = (0..800).map(|i| format!("revenue/{i}.csv")).collect();
        let text = file_list(&files);
        assert!(text.ends_with("revenue/4.csv and 795 more"), "{text}");
        assert_eq!(text.matches(".csv").count(), 5);
        assert_eq!(file_list(&files[..2]), "revenue/0.csv, revenue/1.csv");
    }

    fn snapshot(id: &str, payable: &str, lines: u64, tax: &str) -> PartnerSnapshot {
        let mut cells: Vec<String> = PAYOUT_CELL_COLUMNS.iter().map(|_| String::new()).collect();
        cells[0] = format!("Partner {id}");
        cells[8] = payable.to_owned();
        PartnerSnapshot {
            partner_id: id.to_owned(),
            partner_name: format!("Partner {id}"),
            payout_cells: Some(cells),
            own_lines: lines,
            master_facts: BTreeMap::from([("profile tax_profile".to_owned(), tax.to_owned())]),
        }
    }

    #[test]
    fn the_first_draft_of_a_period_lists_nothing() {
        let after = [snapshot("1", "10.00", 1, "complete")];
        assert!(changes(None, &after, &InputChanges::default()).is_empty());
    }

    #[test]
    fn each_changed_column_is_a_row_with_the_partners_cause() {
        let before = [
            snapshot("1", "10.00", 1, "complete"),
            snapshot("2", "5.00", 1, "incomplete"),
            snapshot("3", "7.00", 1, "complete"),
        ];
        let after = [
            snapshot("1", "20.00", 3, "complete"),
            snapshot("2", "6.00", 1, "complete"),
            snapshot("3", "7.00", 1, "complete"),
        ];
        let inputs = InputChanges {
            new_revenue_files: vec!["revenue/b.csv".into()],
            ..InputChanges::default()
        };
        let rows = changes(Some(&before), &after, &inputs);
        let summary: Vec<(&str, &str, &str, &str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.partner_id.as_str(),
                    r.column,
                    r.before.as_str(),
                    r.after.as_str(),
                    r.cause.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "1",
                    "payable",
                    "10.00",
                    "20.00",
                    "new revenue file(s): revenue/b.csv (+2 line(s))"
                ),
                (
                    "2",
                    "payable",
                    "5.00",
                    "6.00",
                    "master-data change: profile tax_profile (incomplete -> complete)"
                ),
            ]
        );
    }

    #[test]
    fn retried_rows_are_named_and_not_taken_for_a_new_file() {
        let before = [snapshot("1", "10.00", 1, "complete")];
        let after = [snapshot("1", "12.00", 2, "complete")];
        let inputs = InputChanges {
            new_revenue_files: vec!["revenue/b.csv".into()],
            retried_rows: BTreeMap::from([("1".to_owned(), 1)]),
            ..InputChanges::default()
        };
        let rows = changes(Some(&before), &after, &inputs);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].cause, "retried rows resolved (1)");
    }
}
