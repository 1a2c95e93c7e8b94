//! Pure domain types: money, periods, partners, the reason codes of SPEC §2-§3 and the
//! statuses the store records.
//! Nothing here touches the disk or the database, and time is read only through
//! `clock::Clock`, which the orchestration injects.

pub mod balance;
pub mod clock;
pub mod exception;
pub mod lookup;
pub mod master;
pub mod money;
pub mod outbox;
pub mod partner;
pub mod period;
pub mod program;
pub mod reasons;
pub mod redact;
pub mod revenue;
pub mod statement;
pub mod status;
pub mod warning;

pub use money::{Currency, Rate};
pub use period::Period;
