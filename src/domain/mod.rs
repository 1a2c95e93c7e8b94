//! Pure domain types: money, periods, partners, the reason codes of SPEC §2-§3 and the
//! statuses the store records.
//! Nothing here touches the clock, the disk or the database.

pub mod exception;
pub mod money;
pub mod partner;
pub mod period;
pub mod reasons;
pub mod status;

pub use money::{Currency, Rate};
pub use period::Period;
