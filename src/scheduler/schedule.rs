//! Pure schedule arithmetic: a cron expression with seconds, read in an IANA time zone, to the
//! instants it fires at. Daylight saving is handled here and only here:
//! - a local time skipped by a spring-forward fires once, at the first valid instant after
//!   the gap (02:30 in a 02:00→03:00 gap fires at 03:00);
//! - a local time repeated by a fall-back fires once, at its first occurrence.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// Limit on the search for the end of a DST gap (gaps are at most a few hours).
const MAX_GAP_MINUTES: u32 = 24 * 60;

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    pub time_zone: Tz,
    pub expression: String,
}

impl Schedule {
    /// `expression`: six fields, `sec min hour day-of-month month day-of-week`.
    pub fn parse(expression: &str, time_zone: &str) -> Result<Self, String> {
        let time_zone: Tz = time_zone
            .parse()
            .map_err(|_| format!("`{time_zone}` is not an IANA time zone"))?;
        if expression.split_whitespace().count() != 6 {
            return Err(format!(
                "`{expression}` must have six fields: sec min hour day-of-month month day-of-week"
            ));
        }
        let cron = crate::scheduler::cron::parse(expression)
            .map_err(|e| format!("`{expression}`: {e}"))?;
        Ok(Self {
            cron,
            time_zone,
            expression: expression.to_owned(),
        })
    }

    /// The next scheduled wall-clock time strictly after `local`.
    fn next_local(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        // Wall-clock arithmetic in UTC, which has no DST: every listed local time, once.
        let fake = Utc.from_utc_datetime(&local);
        crate::scheduler::cron::next_after(&self.cron, &fake).map(|t| t.naive_utc())
    }

    /// The instant a scheduled wall-clock time fires at (see the module notes on DST).
    pub fn instant_of(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.time_zone.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            LocalResult::None => {
                let mut probe = local
                    .with_second(0)
                    .and_then(|t| t.with_nanosecond(0))
                    .unwrap_or(local);
                for _ in 0..MAX_GAP_MINUTES {
                    probe += chrono::Duration::minutes(1);
                    if let Some(t) = self.time_zone.from_local_datetime(&probe).earliest() {
                        return t.with_timezone(&Utc);
                    }
                }
                // Invariant: real time zones have no gap of a day.
                Utc.from_utc_datetime(&local)
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
