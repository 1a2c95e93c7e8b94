//! `Period`: a calendar month written `YYYY-MM` (SPEC §2), and the as-of date of a period.
//! Pure: no clock, no I/O.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;

/// A calendar month. Ordered chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: i32,
    month: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a period (expected YYYY-MM)")]
pub struct PeriodError(pub String);

impl Period {
    pub fn new(year: i32, month: u32) -> Option<Self> {
        ((1..=12).contains(&month) && (1000..=9999).contains(&year)).then_some(Self { year, month })
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    /// The last day of the month: the as-of date of eligibility and holds (SPEC §3).
    pub fn as_of_date(self) -> NaiveDate {
        let (year, month) = if self.month == 12 {
            (self.year + 1, 1)
        } else {
            (self.year, self.month + 1)
        };
        // Invariant: the first day of a valid month exists, and so does the day before it.
        NaiveDate::from_ymd_opt(year, month, 1)
            .and_then(|d| d.pred_opt())
            .expect("valid month")
    }

    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn previous(self) -> Self {
        if self.month == 1 {
            Self {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Self {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// The month containing `date`.
    pub fn of_date(date: NaiveDate) -> Self {
        use chrono::Datelike;
        Self {
            year: date.year(),
            month: date.month(),
        }
    }
}

impl FromStr for Period {
    type Err = PeriodError;

    /// Strict `YYYY-MM`: four digits, a dash, two digits, month 01-12.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        let well_formed = bytes.len() == 7
            && bytes[4] == b'-'
            && bytes[..4].iter().chain(&bytes[5..]).all(u8::is_ascii_digit);
        if !well_formed {
            return Err(PeriodError(text.to_owned()));
        }
        let year = text[..4]
            .parse()
            .map_err(|_| PeriodError(text.to_owned()))?;
        let month = text[5..]
            .parse()
            .map_err(|_| PeriodError(text.to_owned()))?;
        Self::new(year, month).ok_or_else(|| PeriodError(text.to_owned()))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Strict `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let well_formed = bytes.len() == 10 && bytes[4] == b'-' && bytes[7] == b'-';
    if !well_formed {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_periods() {
        let p: Period = "2026-10".parse().unwrap();
        assert_eq!(p.to_string(), "2026-10");
        assert_eq!(
            p.as_of_date(),
            NaiveDate::from_ymd_opt(2026, 10, 31).unwrap()
        );
        assert_eq!(
            "2028-02"
                .parse::<Period>()
                .unwrap()
                .as_of_date()
                .to_string(),
            "2028-02-29"
        );
        assert_eq!(
            "2026-12".parse::<Period>().unwrap().next().to_string(),
            "2027-01"
        );
        assert_eq!(
            "2027-01".parse::<Period>().unwrap().previous().to_string(),
            "2026-12"
        );
    }

    #[test]
    fn rejects_malformed_periods() {
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "26-10",
            "2026/10",
            "2026-10-01",
            "",
            "abcd-ef",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_strict_dates() {
        assert!(parse_date("2026-10-31").is_some());
        assert!(parse_date("2026-02-30").is_none());
        assert!(parse_date("2026-1-01").is_none());
    }
}
