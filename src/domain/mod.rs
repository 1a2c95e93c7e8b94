//! Pure domain types: money, periods, partners and the reason codes of SPEC §2-§3.
//! Nothing here touches the clock, the disk or the database.

pub mod money;
pub mod partner;
pub mod period;
pub mod reasons;

pub use money::{Currency, Rate};
pub use period::Period;
