//! The cron expression parser (croner), behind two functions so the rest of the scheduler does
//! not depend on its API.

use chrono::{DateTime, Utc};
pub use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Parses a six-field expression with seconds (`sec min hour day-of-month month day-of-week`).
pub fn parse(expression: &str) -> Result<Cron, croner::errors::CronError> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        .build()
        .parse(expression)
}

/// The next occurrence strictly after `after` (in UTC, i.e. plain wall-clock arithmetic).
pub fn next_after(cron: &Cron, after: &DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(after, false).ok()
}
