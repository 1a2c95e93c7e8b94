//! Pure computation of a period (SPEC §3): lines × rates × FX -> line earnings -> period totals
//! -> settlements. Works column by column over the stored revenue segments; rounding is done
//! only through `domain::money` at the places the SPEC names. Never reads the clock, the disk
//! or the store: the master data, the period and the stored balances are passed in.
//!
//! - `segment`: the per-line loop over one stored segment, and the merge of segments in order;
//! - `line`: the columns of the line report (`earnings_lines.parquet`);
//! - `settle`: period totals rounded to minor units and settled against the stored balances.

mod line;
mod segment;
mod settle;
#[cfg(test)]
mod tests;

pub use line::empty_lines;
pub use segment::{PeriodComputer, SegmentPart};

pub use crate::domain::balance::Balances;
use crate::domain::master::MasterData;
use crate::domain::money::{Currency, MoneyError, NoMinorUnits, Overflow, Payable};
use crate::domain::period::Period;
use crate::domain::reasons::{EligibilityReason, HoldReason};
use crate::ledger::Settlement;
use polars::prelude::PolarsError;

/// A batch's column of partner positions in `MasterData::partners` (`u32::MAX`: none), found
/// by the row checks, so that computing the batch straight away need not look them up again.
pub const PARTNER_POSITION: &str = "partner_position";

pub use crate::domain::revenue::Booking;

/// Lines of a statement, summarised by (booking, billing month, category, line currency,
/// rate, FX rate), so that a partner can recompute each row (issue 14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryLine {
    pub booking: Booking,
    /// The lines' billing month: the period itself for `Earned`, the closed month they were
    /// billed in for `Adjustment`.
    pub billing_month: Period,
    pub product_category: String,
    pub line_currency: String,
    /// The program rate, or `None` for a category without one (non-incentivised revenue).
    pub rate: Option<String>,
    pub lines: u64,
    /// Revenue in the line currency, exact.
    pub revenue: String,
    /// Earning in the payout currency, exact (the period sum rounds once, not per category).
    pub earning: String,
    /// The FX rate applied (line currency -> payout currency), for a converted row that
    /// earns; `None` for a row in the payout currency or one that earns nothing.
    pub fx: Option<AppliedFx>,
}

/// An FX rate as a statement row shows it: the text of `fx_rates.csv`, never re-rounded, and
/// the FX period it is keyed by (the billing month, SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AppliedFx {
    pub rate: String,
    pub period: Period,
}

/// One `payouts.csv` row and its statement figures.
#[derive(Debug, Clone)]
pub struct PartnerFigures {
    pub partner_id: String,
    pub partner_name: String,
    pub program_id: String,
    pub currency: Currency,
    /// The currency's minor units, as the figures were rounded to.
    pub minor_units: u32,
    pub settlement: Settlement,
    pub hold_reasons: Vec<HoldReason>,
    /// Why the partner is not eligible for the period; empty when eligible.
    pub ineligibility_reasons: Vec<EligibilityReason>,
    /// What the partner would be paid this period were every hold and eligibility failure
    /// resolved (issue 15): all its lines earning, its held balance released.
    pub payable_if_resolved: Payable,
    pub categories: Vec<CategoryLine>,
}

impl PartnerFigures {
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibilityRow {
    pub partner_id: String,
    pub partner_name: String,
    pub program_id: String,
    pub reasons: Vec<EligibilityReason>,
    pub revenue_lines: u64,
}

/// An ingested line that cannot be converted with today's FX file (the snapshot changed
/// since it was ingested). It earns nothing until the rate arrives, and blocks `close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxGap {
    pub source_file: String,
    pub line: u64,
    pub record_id: String,
    pub detail: String,
}

/// Ingested lines of a partner that is no longer in partners.csv, which the period would book.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MissingLines {
    /// Lines of the period's own month.
    pub own: u64,
    /// Late lines of a closed month, not yet booked.
    pub late: u64,
}

/// A partner no longer in partners.csv with money in the store: a non-zero balance left by
/// the last close, or lines the period would book. Nothing of it is settled; it stays in the
/// store until the partner is back (`PARTNER_MISSING`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingPartner {
    pub partner_id: String,
    /// The stored balance, when it is not zero.
    pub balance: Option<Balances>,
    pub lines: MissingLines,
}

#[derive(Debug)]
pub struct PeriodComputation {
    pub period: Period,
    pub payouts: Vec<PartnerFigures>,
    pub eligibility: Vec<EligibilityRow>,
    pub fx_gaps: Vec<FxGap>,
    /// Sorted by partner id.
    pub missing_partners: Vec<MissingPartner>,
}

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error(
        "program `{program}` has no min_payout for {currency} (partner {partner_id}'s payout currency)"
    )]
    MissingMinPayout {
        program: String,
        currency: Currency,
        partner_id: String,
    },
    #[error(
        "partner {partner_id}: balance is held in {stored} but the payout currency is now {current}"
    )]
    CurrencyChanged {
        partner_id: String,
        stored: Currency,
        current: Currency,
    },
    #[error("partner {partner_id}: {source}")]
    Overflow {
        partner_id: String,
        source: Overflow,
    },
    #[error("partner {partner_id}: {source}")]
    Money {
        partner_id: String,
        source: MoneyError,
    },
    #[error("partner {partner_id}: payout currency {source}")]
    NoMinorUnits {
        partner_id: String,
        source: NoMinorUnits,
    },
    #[error("revenue segment: a stored line has no amount (row {row}): the store is corrupt")]
    MissingAmount { row: usize },
    /// Ingest stores every line with its lateness and a valid billing month; a line without
    /// them would be skipped, and a close would seal it unpaid.
    #[error("revenue segment: a stored line has {what} (row {row}): the store is corrupt")]
    CorruptLine { row: usize, what: &'static str },
    #[error("revenue segment: {0}")]
    Segment(#[from] PolarsError),
}

/// Configuration errors reported before anything is computed (SPEC §3).
pub fn check_configuration(master: &MasterData) -> Result<(), ComputeError> {
    for partner in master.partners.values() {
        if let Some(program) = master.programs.for_type(partner.partner_type)
            && !program.min_payout.contains_key(&partner.payout_currency)
        {
            return Err(ComputeError::MissingMinPayout {
                program: program.id.clone(),
                currency: partner.payout_currency,
                partner_id: partner.partner_id.clone(),
            });
        }
    }
    Ok(())
}

/// How much a computation keeps besides the payout totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// `run`: the payouts and the line report.
    Payouts,
    /// `close`: also the statement lines, per category.
    Statements,
}
