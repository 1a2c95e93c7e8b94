//! Pure schedule arithmetic: a cron expression with seconds, read in an IANA time zone, to the
//! instants it fires at. Daylight saving is handled here and only here:
//! - a local time skipped by a spring-forward fires once, at the first valid instant after
//!   the gap (02:30 in a 02:00→03:00 gap fires at 03:00);
//! - a local time repeated by a fall-back fires once, at its first occurrence.
//!
//! Every instant computed here is a nominal scheduled second (no sub-second part), whatever
//! instant it was computed from: it is the key of the fire in the store, so two instances
//! whose clocks tick at different fractions of a second must compute the same one.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// Limit on the search for the end of a DST gap (gaps are at most a few hours).
const MAX_GAP_MINUTES: u32 = 24 * 60;

/// `t` without its sub-second part: the scheduled second it belongs to.
fn nominal_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

fn whole_second(t: NaiveDateTime) -> NaiveDateTime {
    t.with_nanosecond(0).unwrap_or(t)
}

/// Why a job's `schedule` or `time_zone` was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("`{0}` is not an IANA time zone")]
    TimeZone(String),
    #[error("`{0}` must have six fields: sec min hour day-of-month month day-of-week")]
    FieldCount(String),
    #[error("`{expression}`: {source}")]
    Cron {
        expression: String,
        source: croner::errors::CronError,
    },
}

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    pub time_zone: Tz,
    pub expression: String,
}

impl Schedule {
    /// `expression`: six fields, `sec min hour day-of-month month day-of-week`.
    pub fn parse(expression: &str, time_zone: &str) -> Result<Self, ScheduleError> {
        let time_zone: Tz = time_zone
            .parse()
            .map_err(|_| ScheduleError::TimeZone(time_zone.to_owned()))?;
        if expression.split_whitespace().count() != 6 {
            return Err(ScheduleError::FieldCount(expression.to_owned()));
        }
        let cron =
            crate::scheduler::cron::parse(expression).map_err(|source| ScheduleError::Cron {
                expression: expression.to_owned(),
                source,
            })?;
        Ok(Self {
            cron,
            time_zone,
            expression: expression.to_owned(),
        })
    }

    /// The next scheduled wall-clock time strictly after `local`, on a whole second.
    fn next_local(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        // Wall-clock arithmetic in UTC, which has no DST: every listed local time, once.
        // croner keeps the sub-second part of its starting point; starting from the whole
        // second gives the nominal time (the next listed second after 12:00:02.7 is 12:00:03).
        let fake = Utc.from_utc_datetime(&whole_second(local));
        crate::scheduler::cron::next_after(&self.cron, &fake).map(|t| whole_second(t.naive_utc()))
    }

    /// The instant a scheduled wall-clock time fires at (see the module notes on DST).
    pub fn instant_of(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.time_zone.from_local_datetime(&local) {
            LocalResult::Single(t) => nominal_second(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => nominal_second(first.with_timezone(&Utc)),
            LocalResult::None => {
                let mut probe = whole_second(local).with_second(0).unwrap_or(local);
                for _ in 0..MAX_GAP_MINUTES {
                    probe += chrono::Duration::minutes(1);
                    if let Some(t) = self.time_zone.from_local_datetime(&probe).earliest() {
                        return nominal_second(t.with_timezone(&Utc));
                    }
                }
                // Invariant: real time zones have no gap of a day.
                nominal_second(Utc.from_utc_datetime(&local))
            }
        }
    }

    /// Fire instants in `(after, until]`, ascending, each once.
    pub fn fires_between(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut fires = Vec::new();
        // Start a day early in local time: a gap can move a wall-clock time forward in real time.
        let mut local =
            after.with_timezone(&self.time_zone).naive_local() - chrono::Duration::days(1);
        while let Some(next) = self.next_local(local) {
            let instant = self.instant_of(next);
            if instant > until {
                break;
            }
            if instant > after && fires.last() != Some(&instant) {
                fires.push(instant);
            }
            local = next;
        }
        fires
    }

    /// The first fire strictly after `after`.
    pub fn next_fire(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut local =
            after.with_timezone(&self.time_zone).naive_local() - chrono::Duration::days(1);
        while let Some(next) = self.next_local(local) {
            let instant = self.instant_of(next);
            if instant > after {
                return Some(instant);
            }
            local = next;
        }
        None
    }

    /// The latest fire at or before `until`, looking back at most 400 days (a yearly job).
    pub fn latest_fire(&self, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Widening windows keep this cheap for frequent schedules.
        [
            chrono::Duration::hours(1),
            chrono::Duration::days(1),
            chrono::Duration::days(32),
            chrono::Duration::days(400),
        ]
        .into_iter()
        .find_map(|window| self.fires_between(until - window, until).last().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// Two instances tick at different fractions of a second; both must name the same fire.
    #[test]
    fn fires_are_whole_seconds_whatever_fraction_they_are_computed_from() {
        let schedule = Schedule::parse("*/3 * * * * *", "Europe/Dublin").unwrap();
        for after in [
            "2026-11-01T12:00:01.004Z",
            "2026-11-01T12:00:01.5Z",
            "2026-11-01T12:00:02.999999999Z",
        ] {
            assert_eq!(
                schedule.next_fire(utc(after)),
                Some(utc("2026-11-01T12:00:03Z")),
                "after {after}"
            );
        }
        // Strictly after: a tick a fraction past a fire does not find the same fire again.
        assert_eq!(
            schedule.next_fire(utc("2026-11-01T12:00:03.2Z")),
            Some(utc("2026-11-01T12:00:06Z"))
        );
        let fires = schedule.fires_between(
            utc("2026-11-01T12:00:00.731Z"),
            utc("2026-11-01T12:00:13.2Z"),
        );
        assert_eq!(
            fires,
            ["03", "06", "09", "12"]
                .map(|s| utc(&format!("2026-11-01T12:00:{s}Z")))
                .to_vec()
        );
        assert_eq!(
            schedule.latest_fire(utc("2026-11-01T12:00:13.2Z")),
            Some(utc("2026-11-01T12:00:12Z"))
        );
        // The end of a spring-forward gap too (Dublin, 2027-03-28 01:00 -> 02:00).
        let nightly = Schedule::parse("0 30 1 * * *", "Europe/Dublin").unwrap();
        assert_eq!(
            nightly.next_fire(utc("2027-03-27T12:00:00.25Z")),
            Some(utc("2027-03-28T01:00:00Z"))
        );
    }
}
