//! payout: a batch payout processing engine for a partner incentive program.
//! See `README.md` for the tour and `../shared/SPEC.md` for the contract.

pub mod campaigns;
pub mod cli;
pub mod commands;
pub mod domain;
pub mod earnings;
pub mod eligibility;
pub mod ingest;
pub mod ledger;
pub mod notify;
pub mod progress;
pub mod reports;
pub mod resend;
pub mod run;
pub mod scheduler;
pub mod send;
pub mod settings;
pub mod status_view;
pub mod store;
