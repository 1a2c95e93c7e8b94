//! Warnings of a run: input the engine read past without using it, such as master-data rows of
//! partners that are not in `partners.csv`, or entries of `revenue/` that are not revenue files
//! (folders, hidden files, FIFOs, dangling links, links out of the data directory). A warning
//! changes no figure; it is listed in the run summary and stored with the run for `payout status`,
//! so that an operator sees what was left out. Anything that could change money is an error or
//! a rejection, never a warning.

use std::fmt;

/// Warnings kept per run (listed and stored); beyond this they are only counted, so a snapshot
/// with a million stale rows cannot flood the store or the terminal.
pub const MAX_WARNINGS: usize = 1000;

/// One thing the run read past: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Relative to the data directory: `agreements.csv`, `revenue/notes`.
    pub file: String,
    /// Physical line (header = 1), when the warning is about a row.
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}: line {line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// The warnings of a run, at most `MAX_WARNINGS` of them, with a count of the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warnings {
    kept: Vec<Warning>,
    omitted: u64,
}

impl Warnings {
    pub fn push(&mut self, file: &str, line: Option<u64>, message: impl Into<String>) {
        if self.kept.len() < MAX_WARNINGS {
            self.kept.push(Warning {
                file: file.to_owned(),
                line,
                message: message.into(),
            });
        } else {
            self.omitted += 1;
        }
    }

    pub fn extend(&mut self, other: &Warnings) {
        for warning in &other.kept {
            self.push(&warning.file, warning.line, warning.message.clone());
        }
        self.omitted += other.omitted;
    }

    /// How many warnings there were, kept or not.
    pub fn count(&self) -> u64 {
        self.kept.len() as u64 + self.omitted
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// The kept warnings, followed by one that says how many more there were, if any.
    pub fn listed(&self) -> Vec<Warning> {
        let mut listed = self.kept.clone();
        if self.omitted > 0 {
            listed.push(Warning {
                file: "(run)".to_owned(),
                line: None,
                message: format!(
                    "{} more warning(s) not listed (at most {MAX_WARNINGS} are kept)",
                    self.omitted
                ),
            });
        }
        listed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_beyond_the_limit_are_counted_not_kept() {
        let mut warnings = Warnings::default();
        for line in 0..(MAX_WARNINGS as u64 + 5) {
            warnings.push("users.csv", Some(line), "x");
        }
        assert_eq!(warnings.count(), MAX_WARNINGS as u64 + 5);
        let listed = warnings.listed();
        assert_eq!(listed.len(), MAX_WARNINGS + 1);
        assert!(listed[MAX_WARNINGS].message.starts_with("5 more"));
    }

    #[test]
    fn a_warning_names_file_and_line() {
        let warning = Warning {
            file: "agreements.csv".into(),
            line: Some(4),
            message: "partner `9` is not in partners.csv; row not used".into(),
        };
        assert_eq!(
            warning.to_string(),
            "agreements.csv: line 4: partner `9` is not in partners.csv; row not used"
        );
    }
}
