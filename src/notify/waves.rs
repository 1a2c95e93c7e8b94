//! Migration waves (`jobs/waves.toml`, SPEC §3): which legacy-portal partners move when, and
//! the pure decision of what a partner is due today: the first notice, a reminder, nothing, or
//! completion once it has an active incentive admin.

use std::path::Path;

use chrono::NaiveDate;
use serde::Deserialize;
use xxhash_rust::xxh3::xxh3_64;

use crate::domain::outbox::WaveProgress;
use crate::domain::partner::Partner;
use crate::domain::period::parse_date;

/// Reminders are never more frequent than this, whatever the file says.
const MIN_REMINDER_EVERY_DAYS: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Countries(Vec<String>),
    PartnerIds(Vec<String>),
    /// A stable share of partner ids: those whose hash falls in the first `n` of 100 buckets.
    Percent(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    pub name: String,
    pub opens_on: NaiveDate,
    pub selector: Selector,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waves {
    pub reminder_every_days: u32,
    pub max_reminders: u32,
    /// In file order; a partner belongs to the first wave that selects it.
    pub waves: Vec<Wave>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WavesFile {
    reminder_every_days: u32,
    max_reminders: u32,
    #[serde(default)]
    wave: Vec<WaveToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaveToml {
    name: String,
    opens_on: String,
    countries: Option<Vec<String>>,
    partner_ids: Option<Vec<String>>,
    percent: Option<u32>,
}

/// The stable bucket (0-99) of a partner id.
pub fn bucket(partner_id: &str) -> u32 {
    (xxh3_64(partner_id.as_bytes()) % 100) as u32
}

/// Why a waves file was refused: what is wrong, in words that name the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavesError {
    /// Not TOML, an unknown key, or a value of the wrong type (toml's message).
    #[error("{0}")]
    Toml(String),
    #[error("reminder_every_days must be at least {MIN_REMINDER_EVERY_DAYS}")]
    RemindersTooOften,
    #[error("wave `{wave}`: opens_on `{opens_on}` is not YYYY-MM-DD")]
    OpensOn { wave: String, opens_on: String },
    #[error("wave `{wave}`: percent {percent} is over 100")]
    PercentOver100 { wave: String, percent: u32 },
    #[error("wave `{0}`: give exactly one of countries, partner_ids or percent")]
    Selector(String),
    #[error("wave `{0}` is defined twice")]
    Duplicate(String),
}

/// A waves file that could not be read or was refused.
#[derive(Debug, thiserror::Error)]
pub enum WavesFileError {
    #[error("{}: {source}", file.display())]
    Read {
        file: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", file.display())]
    Invalid {
        file: std::path::PathBuf,
        source: WavesError,
    },
}

impl Waves {
    pub fn parse(text: &str) -> Result<Self, WavesError> {
        let file: WavesFile = toml::from_str(text).map_err(|e| WavesError::Toml(e.to_string()))?;
        if file.reminder_every_days < MIN_REMINDER_EVERY_DAYS {
            return Err(WavesError::RemindersTooOften);
        }
        let mut waves = Vec::new();
        for raw in file.wave {
            let opens_on = parse_date(&raw.opens_on).ok_or_else(|| WavesError::OpensOn {
                wave: raw.name.clone(),
                opens_on: raw.opens_on.clone(),
            })?;
            let selector = match (raw.countries, raw.partner_ids, raw.percent) {
                (Some(countries), None, None) => Selector::Countries(countries),
                (None, Some(ids), None) => Selector::PartnerIds(ids),
                (None, None, Some(percent)) if percent <= 100 => Selector::Percent(percent),
                (None, None, Some(percent)) => {
                    return Err(WavesError::PercentOver100 {
                        wave: raw.name,
                        percent,
                    });
                }
                _ => {
                    return Err(WavesError::Selector(raw.name));
                }
            };
            if waves.iter().any(|w: &Wave| w.name == raw.name) {
                return Err(WavesError::Duplicate(raw.name));
            }
            waves.push(Wave {
                name: raw.name,
                opens_on,
                selector,
            });
        }
        Ok(Self {
            reminder_every_days: file.reminder_every_days,
            max_reminders: file.max_reminders,
            waves,
        })
    }

    pub fn load(path: &Path) -> Result<Self, WavesFileError> {
        let file = path.to_path_buf();
        let text = std::fs::read_to_string(path).map_err(|source| WavesFileError::Read {
            file: file.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|source| WavesFileError::Invalid { file, source })
    }

    /// The wave of a legacy-portal partner, if any selects it.
    pub fn wave_for(&self, partner: &Partner) -> Option<&Wave> {
        if !partner.legacy_portal {
            return None;
        }
        self.waves.iter().find(|wave| match &wave.selector {
            Selector::Countries(countries) => countries.iter().any(|c| c == &partner.country),
            Selector::PartnerIds(ids) => ids.iter().any(|id| id == &partner.partner_id),
            Selector::Percent(percent) => bucket(&partner.partner_id) < *percent,
        })
    }
}

/// What a legacy partner is due today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationStep {
    Nothing,
    /// The first migration email.
    Notify,
    /// Reminder number `n` (1-based).
    Remind(u32),
    /// It has an active incentive admin: record completion, send nothing more.
    Complete,
}

/// Pure: the step due for a partner of `wave` on `today`.
pub fn next_step(
    wave: &Wave,
    waves: &Waves,
    today: NaiveDate,
    progress: Option<&WaveProgress>,
    has_active_admin: bool,
) -> MigrationStep {
    if wave.opens_on > today {
        return MigrationStep::Nothing;
    }
    if progress.is_some_and(|p| p.completed_on.is_some()) {
        return MigrationStep::Nothing;
    }
    if has_active_admin {
        return MigrationStep::Complete;
    }
    let Some(last) = progress
        .and_then(|p| p.last_notified_on.as_deref())
        .and_then(parse_date)
    else {
        return MigrationStep::Notify;
    };
    let reminders = progress.map_or(0, |p| p.reminders) as u32;
    let due = last + chrono::Days::new(u64::from(waves.reminder_every_days));
    if reminders < waves.max_reminders && today >= due {
        MigrationStep::Remind(reminders + 1)
    } else {
        MigrationStep::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAVES: &str = r#"
reminder_every_days = 7
max_reminders = 2

[[wave]]
name = "korea"
opens_on = "2026-11-01"
countries = ["KR"]

[[wave]]
name = "pilot"
opens_on = "2026-12-01"
partner_ids = ["1000010"]

[[wave]]
name = "quarter"
opens_on = "2027-01-04"
percent = 25
"#;

    fn date(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    #[test]
    fn reminders_follow_the_interval_up_to_the_limit_and_stop_on_completion() {
        let waves = Waves::parse(WAVES).unwrap();
        let wave = &waves.waves[0];
        assert_eq!(
            next_step(wave, &waves, date("2026-10-31"), None, false),
            MigrationStep::Nothing
        );
        assert_eq!(
            next_step(wave, &waves, date("2026-11-01"), None, false),
            MigrationStep::Notify
        );
        let mut progress = WaveProgress {
            wave: "korea".into(),
            reminders: 0,
            last_notified_on: Some("2026-11-01".into()),
            completed_on: None,
        };
        assert_eq!(
            next_step(wave, &waves, date("2026-11-07"), Some(&progress), false),
            MigrationStep::Nothing
        );
        assert_eq!(
            next_step(wave, &waves, date("2026-11-08"), Some(&progress), false),
            MigrationStep::Remind(1)
        );
        progress.reminders = 2;
        progress.last_notified_on = Some("2026-11-15".into());
        assert_eq!(
            next_step(wave, &waves, date("2026-12-31"), Some(&progress), false),
            MigrationStep::Nothing
        );
        assert_eq!(
            next_step(wave, &waves, date("2026-12-31"), Some(&progress), true),
            MigrationStep::Complete
        );
    }

    #[test]
    fn a_wave_needs_exactly_one_selector() {
        let err = Waves::parse("reminder_every_days = 7\nmax_reminders = 1\n[[wave]]\nname = \"x\"\nopens_on = \"2026-01-01\"\ncountries = [\"KR\"]\npercent = 5\n").unwrap_err();
        assert_eq!(err, WavesError::Selector("x".to_owned()));
        assert!(err.to_string().contains("exactly one"), "{err}");
    }

    #[test]
    fn percentage_buckets_are_stable() {
        assert_eq!(bucket("1000005"), bucket("1000005"));
        let share = (0..10_000)
            .filter(|i| bucket(&format!("{}", 3_000_000 + i)) < 25)
            .count();
        assert!((2_200..2_800).contains(&share), "{share}");
    }
}
