//! The statuses the store records, as closed sets: a run's outcome, a scheduled fire's status,
//! an outbox message's status and kind. Each is stored as the lowercase text `as_str` gives
//! (the values existing databases hold; migration 0009 adds CHECK constraints listing exactly
//! these), read back with `parse`, and shown and serialised as that same text.
//! Pure types: nothing here touches the database.

use std::fmt;

/// A stored status text that is none of its enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownStatus {
    /// Which status it was meant to be (`run outcome`, `outbox kind`, …).
    pub what: &'static str,
    pub value: String,
}

/// Declares a status enum with its stored texts, in the order `ALL` lists them.
macro_rules! status_enum {
    (
        $(#[$meta:meta])*
        $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the order the schema's CHECK constraint lists them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The text stored in the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The value stored as `text`, if it is one.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            /// The stored text; honours width and alignment (`{:<10}`).
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl TryFrom<&str> for $name {
            type Error = UnknownStatus;

            fn try_from(text: &str) -> Result<Self, UnknownStatus> {
                Self::parse(text).ok_or_else(|| UnknownStatus {
                    what: $what,
                    value: text.to_owned(),
                })
            }
        }
    };
}

status_enum! {
    /// How a run of `run` or `close` ended, as `runs.outcome` records it (SPEC §6).
    RunOutcome ("run outcome") {
        /// Started and not finished: still running, or its process died.
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
    }
}

status_enum! {
    /// The state of one fire of a scheduled job (`job_fires.status`).
    FireStatus ("fire status") {
        /// Claimed and not finished (its lease says whether its runner is alive).
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        /// Not run: an earlier fire of the job was still running.
        Skipped => "skipped",
    }
}

status_enum! {
    /// Where an outbox message is in its delivery (`outbox.status`).
    OutboxStatus ("outbox status") {
        /// Waiting to be sent (again, after a temporary failure).
        Queued => "queued",
        /// Claimed by a sender.
        Sending => "sending",
        Sent => "sent",
        /// Failed for good.
        Failed => "failed",
    }
}

status_enum! {
    /// What an outbox message is (`outbox.kind`); it names the email template.
    OutboxKind ("outbox kind") {
        /// A closed period's statement.
        Statement => "statement",
        /// A program invitation.
        Invitation => "invitation",
        /// A migration-wave notice; its reminders are `migration` messages too.
        Migration => "migration",
        /// Allowed by the schema since 0001 but never written, and without a template.
        Reminder => "reminder",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_from_its_stored_text() {
        for &s in RunOutcome::ALL {
            assert_eq!(RunOutcome::parse(s.as_str()), Some(s));
        }
        for &s in FireStatus::ALL {
            assert_eq!(FireStatus::parse(s.as_str()), Some(s));
        }
        for &s in OutboxStatus::ALL {
            assert_eq!(OutboxStatus::parse(s.as_str()), Some(s));
        }
        for &s in OutboxKind::ALL {
            assert_eq!(OutboxKind::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn other_texts_are_refused_with_what_was_expected() {
        assert_eq!(OutboxKind::parse("Statement"), None);
        assert_eq!(
            RunOutcome::try_from("done").unwrap_err().to_string(),
            "unknown run outcome `done`"
        );
    }

    #[test]
    fn statuses_serialise_as_their_stored_text() {
        assert_eq!(
            serde_json::to_string(&[Some(FireStatus::Skipped), None]).unwrap(),
            r#"["skipped",null]"#
        );
        assert_eq!(OutboxKind::Invitation.to_string(), "invitation");
        assert_eq!(format!("[{:<9}]", FireStatus::Failed), "[failed   ]");
    }
}
