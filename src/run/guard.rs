//! The guards of `close` (SPEC §4; README "Closing a month"): a period is closed only once it
//! has ended in the configured time zone, only with the figures of its latest draft (what
//! finance reviewed), and never while a partner missing from partners.csv has lines the close
//! would book. Pure: today's date, fingerprints and inputs are passed in; this module never
//! reads the clock, the disk or the store, and never decides anything but "refuse, and why".

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::domain::period::Period;
use crate::earnings::MissingPartner;
use crate::ingest::master::InputFile;

/// The calendar date `close` judges by: today in the configured zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Today {
    pub date: NaiveDate,
    pub time_zone: Tz,
}

impl Today {
    /// The date at instant `now` in `time_zone`.
    pub fn at(now: DateTime<Utc>, time_zone: Tz) -> Self {
        Self {
            date: now.with_timezone(&time_zone).date_naive(),
            time_zone,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CloseRefused {
    #[error("{period} has not ended: it can be closed from {from} ({time_zone})")]
    NotEnded {
        period: Period,
        from: NaiveDate,
        time_zone: Tz,
    },
    #[error(
        "cannot close {period}: the figures would differ from its latest draft, which is what was reviewed ({changes}); run the draft again (`payout run --period {period}`), review its changes.csv (what changed per partner, and why), then close"
    )]
    DraftChanged { period: Period, changes: String },
    #[error(
        "cannot close {period}: approval is required (require_approval): name who approved the reviewed draft with `payout close --period {period} --approved-by NAME`"
    )]
    ApprovalRequired { period: Period },
    #[error("cannot close {period}: --approved-by must name a person: {problem}")]
    BadApprover {
        period: Period,
        problem: &'static str,
    },
    #[error(
        "cannot close {period}: {partners} not in partners.csv but would have revenue lines booked by this close (PARTNER_MISSING in exceptions.csv); put the partner back in partners.csv (with its agreements terminated if it is to earn nothing), run the draft again (`payout run --period {period}`), then close"
    )]
    MissingPartnerLines { period: Period, partners: String },
}

/// The sign-off a close is given: who approved it, and whether an approval is required
/// (`require_approval`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignOff {
    pub approved_by: Option<String>,
    pub required: bool,
}

/// The longest approver name kept: a name, not a document.
const MAX_APPROVER_CHARS: usize = 200;

impl SignOff {
    /// `approved_by` trimmed; an empty one is no approval (and refused by `ensure_sign_off`).
    pub fn new(approved_by: Option<&str>, required: bool) -> Self {
        Self {
            approved_by: approved_by.map(|name| name.trim().to_owned()),
            required,
        }
    }
}

/// Refuses a close without the approval the settings require, or with an approver name that
/// is empty, too long or holds control characters (it is shown in status and the manifest).
pub fn ensure_sign_off(period: Period, sign_off: &SignOff) -> Result<(), CloseRefused> {
    let Some(name) = &sign_off.approved_by else {
        return match sign_off.required {
            true => Err(CloseRefused::ApprovalRequired { period }),
            false => Ok(()),
        };
    };
    let problem = if name.is_empty() {
        Some("the name is empty")
    } else if name.chars().count() > MAX_APPROVER_CHARS {
        Some("the name is longer than 200 characters")
    } else if name.chars().any(char::is_control) {
        Some("the name holds a control character")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(CloseRefused::BadApprover { period, problem }),
        None => Ok(()),
    }
}

/// Refuses a period that has not ended on `today`: it can be closed from the first day of the
/// next month, in `today`'s zone.
pub fn ensure_ended(period: Period, today: &Today) -> Result<(), CloseRefused> {
    let next = period.next();
    let from = NaiveDate::from_ymd_opt(next.year(), next.month(), 1);
    match from {
        Some(from) if today.date >= from => Ok(()),
        Some(from) => Err(CloseRefused::NotEnded {
            period,
            from,
            time_zone: today.time_zone,
        }),
        // Unreachable for a valid period (day 1 always exists); refusing is the safe side.
        None => Err(CloseRefused::NotEnded {
            period,
            from: today.date,
            time_zone: today.time_zone,
        }),
    }
}

/// Refuses a close that would book revenue lines of partners missing from partners.csv: their
/// segments would be marked booked and the lines never counted again. A missing partner with
/// only a balance does not stop the close; its balance is left untouched.
pub fn ensure_no_missing_lines(
    period: Period,
    missing: &[MissingPartner],
) -> Result<(), CloseRefused> {
    let with_lines: Vec<String> = missing
        .iter()
        .filter(|m| m.lines.own + m.lines.late > 0)
        .map(|m| {
            format!(
                "partner {} ({} line(s))",
                m.partner_id,
                m.lines.own + m.lines.late
            )
        })
        .collect();
    if with_lines.is_empty() {
        return Ok(());
    }
    let partners = match with_lines.len() {
        1 => format!("{} is", with_lines[0]),
        _ => format!("{} are", with_lines.join(", ")),
    };
    Err(CloseRefused::MissingPartnerLines { period, partners })
}

/// What a draft is computed from: the engine version, the period, the store state (revenue
/// segments, rejections, closes: `Store::ledger_version`) and the master-data snapshot. Two
/// computations with the same fingerprint have the same figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub engine_version: String,
    pub period: String,
    pub ledger_version: String,
    /// Master-data files and their SHA-256, as read.
    pub master: Vec<InputFile>,
}

/// The parts of `Store::ledger_version` that count closes (their number, the latest time).
const LEDGER_CLOSE_PARTS: std::ops::Range<usize> = 3..5;

impl Fingerprint {
    pub fn new(period: Period, ledger_version: String, master: &[InputFile]) -> Self {
        Self {
            engine_version: env!("CARGO_PKG_VERSION").to_owned(),
            period: period.to_string(),
            ledger_version,
            master: master.to_vec(),
        }
    }

    /// `version|period|ledger|file=sha256|…`, as stored with each draft.
    pub fn text(&self) -> String {
        let mut text = format!(
            "{}|{}|{}",
            self.engine_version, self.period, self.ledger_version
        );
        for file in &self.master {
            text.push_str(&format!("|{}={}", file.name, file.sha256));
        }
        text
    }

    /// The master-data files whose content differs in `current` (changed, added or gone),
    /// sorted by name.
    pub fn changed_master_files(&self, current: &Fingerprint) -> Vec<String> {
        let mut changed: Vec<String> = current
            .master
            .iter()
            .filter(|file| !self.master.contains(file))
            .map(|file| file.name.clone())
            .collect();
        changed.extend(
            self.master
                .iter()
                .filter(|file| !current.master.iter().any(|f| f.name == file.name))
                .map(|file| file.name.clone()),
        );
        changed.sort_unstable();
        changed.dedup();
        changed
    }

    /// Whether a period was closed between this fingerprint and `current` (the balances moved).
    pub fn closes_differ(&self, current: &Fingerprint) -> bool {
        let closes = |ledger: &str| -> Vec<String> {
            ledger
                .split('/')
                .skip(LEDGER_CLOSE_PARTS.start)
                .take(LEDGER_CLOSE_PARTS.len())
                .map(str::to_owned)
                .collect()
        };
        closes(&self.ledger_version) != closes(&current.ledger_version)
    }

    /// Reads `text`; `None` when it is not a fingerprint.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('|');
        let (engine_version, period, ledger_version) =
            (parts.next()?, parts.next()?, parts.next()?);
        let master = parts
            .map(|part| {
                part.split_once('=').map(|(name, sha256)| InputFile {
                    name: name.to_owned(),
                    sha256: sha256.to_owned(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            engine_version: engine_version.to_owned(),
            period: period.to_owned(),
            ledger_version: ledger_version.to_owned(),
            master,
        })
    }
}

/// What changed between the reviewed draft and what a close would compute now.
pub struct DraftComparison<'a> {
    pub draft: &'a Fingerprint,
    pub current: &'a Fingerprint,
    /// Every input file the draft recorded (master data and revenue).
    pub draft_inputs: &'a [InputFile],
    /// The revenue files in `revenue/` now.
    pub current_revenue: &'a [InputFile],
    /// Rejected rows ingested by retry since the draft.
    pub retried_rows: u64,
}

/// Refuses a close whose figures would differ from the latest draft, naming what changed.
pub fn ensure_matches_draft(
    period: Period,
    comparison: &DraftComparison<'_>,
) -> Result<(), CloseRefused> {
    if comparison.draft == comparison.current {
        return Ok(());
    }
    Err(CloseRefused::DraftChanged {
        period,
        changes: describe_changes(comparison).join("; "),
    })
}

fn describe_changes(c: &DraftComparison<'_>) -> Vec<String> {
    let mut changes = Vec::new();
    if c.draft.engine_version != c.current.engine_version {
        changes.push(format!(
            "the engine version changed from {} to {}",
            c.draft.engine_version, c.current.engine_version
        ));
    }
    let new_files: Vec<&str> = c
        .current_revenue
        .iter()
        .filter(|file| !c.draft_inputs.iter().any(|d| d.sha256 == file.sha256))
        .map(|file| file.name.as_str())
        .collect();
    if !new_files.is_empty() {
        changes.push(format!("new revenue file(s): {}", new_files.join(", ")));
    }
    let master_changed = c.draft.changed_master_files(c.current);
    if !master_changed.is_empty() {
        changes.push(format!(
            "master-data snapshot changed: {}",
            master_changed.join(", ")
        ));
    }
    if c.retried_rows > 0 {
        changes.push(format!(
            "{} retried row(s) ingested since the draft",
            c.retried_rows
        ));
    }
    if c.draft.closes_differ(c.current) {
        changes.push("another period was closed since the draft (the balances moved)".to_owned());
    }
    if changes.is_empty() {
        changes.push("the stored revenue or rejections changed since the draft".to_owned());
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::earnings::MissingLines;

    fn period(text: &str) -> Period {
        text.parse().unwrap()
    }

    fn today(date: &str, zone: Tz) -> Today {
        Today {
            date: date.parse().unwrap(),
            time_zone: zone,
        }
    }

    #[test]
    fn a_month_can_be_closed_from_the_first_day_of_the_next() {
        let refused = ensure_ended(period("2026-12"), &today("2026-12-02", chrono_tz::UTC));
        assert_eq!(
            refused.unwrap_err().to_string(),
            "2026-12 has not ended: it can be closed from 2027-01-01 (UTC)"
        );
        assert!(ensure_ended(period("2026-12"), &today("2026-12-31", chrono_tz::UTC)).is_err());
        assert!(ensure_ended(period("2026-12"), &today("2027-01-01", chrono_tz::UTC)).is_ok());
        assert!(ensure_ended(period("2026-11"), &today("2026-12-01", chrono_tz::UTC)).is_ok());
        assert!(ensure_ended(period("2031-01"), &today("2026-12-02", chrono_tz::UTC)).is_err());
    }

    #[test]
    fn today_is_the_date_in_the_configured_zone() {
        // 2027-01-01 00:30 in Dublin is still 2026-12-31 in New York.
        let now: DateTime<Utc> = "2027-01-01T00:30:00Z".parse().unwrap();
        let dublin = Today::at(now, chrono_tz::Europe::Dublin);
        let new_york = Today::at(now, chrono_tz::America::New_York);
        assert!(ensure_ended(period("2026-12"), &dublin).is_ok());
        assert_eq!(
            ensure_ended(period("2026-12"), &new_york)
                .unwrap_err()
                .to_string(),
            "2026-12 has not ended: it can be closed from 2027-01-01 (America/New_York)"
        );
        // Auckland is a day ahead: its 2026-12-01 starts on 2026-11-30 UTC.
        let early: DateTime<Utc> = "2026-11-30T12:00:00Z".parse().unwrap();
        assert!(
            ensure_ended(
                period("2026-11"),
                &Today::at(early, chrono_tz::Pacific::Auckland)
            )
            .is_ok()
        );
        assert!(ensure_ended(period("2026-11"), &Today::at(early, chrono_tz::UTC)).is_err());
    }

    fn file(name: &str, sha256: &str) -> InputFile {
        InputFile {
            name: name.to_owned(),
            sha256: sha256.to_owned(),
        }
    }

    #[test]
    fn fingerprints_read_back_as_written() {
        let fingerprint = Fingerprint::new(
            period("2026-10"),
            "7/12/9/1/1700000000000".to_owned(),
            &[file("programs.toml", "aa"), file("partners.csv", "bb")],
        );
        let text = fingerprint.text();
        assert!(text.ends_with("|2026-10|7/12/9/1/1700000000000|programs.toml=aa|partners.csv=bb"));
        assert_eq!(Fingerprint::parse(&text), Some(fingerprint));
        assert_eq!(Fingerprint::parse("garbage"), None);
    }

    #[test]
    fn a_changed_draft_names_what_changed_and_the_remedy() {
        let draft = Fingerprint::new(
            period("2026-10"),
            "7/12/9/1/100".to_owned(),
            &[file("programs.toml", "aa"), file("partners.csv", "bb")],
        );
        let current = Fingerprint::new(
            period("2026-10"),
            "9/12/7/2/200".to_owned(),
            &[file("programs.toml", "aa"), file("partners.csv", "cc")],
        );
        let draft_inputs = [draft.master.clone(), vec![file("revenue/a.csv", "r1")]].concat();
        let current_revenue = [file("revenue/a.csv", "r1"), file("revenue/b.csv", "r2")];
        let refused = ensure_matches_draft(
            period("2026-10"),
            &DraftComparison {
                draft: &draft,
                current: &current,
                draft_inputs: &draft_inputs,
                current_revenue: &current_revenue,
                retried_rows: 2,
            },
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            refused,
            "cannot close 2026-10: the figures would differ from its latest draft, which is what was reviewed \
             (new revenue file(s): revenue/b.csv; master-data snapshot changed: partners.csv; \
             2 retried row(s) ingested since the draft; another period was closed since the draft (the balances moved)); \
             run the draft again (`payout run --period 2026-10`), review its changes.csv (what changed per partner, and why), then close"
        );
        let same = DraftComparison {
            draft: &draft,
            current: &draft,
            draft_inputs: &draft_inputs,
            current_revenue: &current_revenue,
            retried_rows: 0,
        };
        assert!(ensure_matches_draft(period("2026-10"), &same).is_ok());
    }

    #[test]
    fn a_required_approval_must_name_someone() {
        let p = period("2026-10");
        assert!(ensure_sign_off(p, &SignOff::default()).is_ok());
        let required = SignOff::new(None, true);
        assert!(
            ensure_sign_off(p, &required)
                .unwrap_err()
                .to_string()
                .contains("--approved-by NAME")
        );
        assert!(ensure_sign_off(p, &SignOff::new(Some(" Ana Díaz "), true)).is_ok());
        assert_eq!(
            SignOff::new(Some(" Ana Díaz "), true)
                .approved_by
                .as_deref(),
            Some("Ana Díaz")
        );
        for bad in ["  ", "a\nb", &"x".repeat(201)] {
            assert!(
                ensure_sign_off(p, &SignOff::new(Some(bad), false)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_lines_of_missing_partners_stop_a_close() {
        let balance_only = MissingPartner {
            partner_id: "1000013".into(),
            balance: None,
            lines: MissingLines::default(),
        };
        assert!(
            ensure_no_missing_lines(period("2026-11"), std::slice::from_ref(&balance_only)).is_ok()
        );
        let with_lines = MissingPartner {
            partner_id: "1000006".into(),
            balance: None,
            lines: MissingLines { own: 2, late: 1 },
        };
        let refused = ensure_no_missing_lines(period("2026-11"), &[with_lines, balance_only])
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with(
                "cannot close 2026-11: partner 1000006 (3 line(s)) is not in partners.csv"
            ),
            "{refused}"
        );
    }
}
