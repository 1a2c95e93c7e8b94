//! Pure computation of a period (SPEC §3): lines × rates × FX -> line earnings -> period totals
//! -> settlements. Works column by column over the stored revenue segments; rounding is done
//! only through `domain::money` at the places the SPEC names.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;
use rust_decimal::Decimal;

use crate::domain::money::{
    Currency, EARNING_SCALE, ExactSum, Overflow, format_scaled, line_earning,
};
use crate::domain::partner::Partner;
use crate::domain::period::Period;
use crate::domain::reasons::{EligibilityReason, HoldReason};
use crate::eligibility;
use crate::ingest::MasterData;
use crate::ledger::{self, Balances, Settlement};

/// How a line enters the period: its own month, or late revenue of a closed month (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Booking {
    Earned,
    Adjustment,
}

impl Booking {
    pub fn as_str(self) -> &'static str {
        match self {
            Booking::Earned => "earned",
            Booking::Adjustment => "adjustment",
        }
    }
}

/// A partner's balances as the store holds them after the last closed period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBalance {
    pub currency: Currency,
    pub balances: Balances,
}

/// Lines of a statement, summarised by (booking, category, line currency, rate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryLine {
    pub booking: Booking,
    pub product_category: String,
    pub line_currency: String,
    /// The program rate, or `None` for a category without one (non-incentivised revenue).
    pub rate: Option<String>,
    pub lines: u64,
    /// Revenue in the line currency, exact.
    pub revenue: String,
    /// Earning in the payout currency, exact (the period sum rounds once, not per category).
    pub earning: String,
}

/// One `payouts.csv` row and its statement figures.
#[derive(Debug, Clone)]
pub struct PartnerFigures {
    pub partner_id: String,
    pub partner_name: String,
    pub program_id: String,
    pub currency: Currency,
    pub settlement: Settlement,
    pub hold_reasons: Vec<HoldReason>,
    pub categories: Vec<CategoryLine>,
}

impl PartnerFigures {
    pub fn minor_units(&self) -> u32 {
        // Invariant: payout currencies are checked to have minor units when master data loads.
        self.currency.minor_units().unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibilityRow {
    pub partner_id: String,
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

#[derive(Debug)]
pub struct PeriodComputation {
    pub period: Period,
    pub payouts: Vec<PartnerFigures>,
    pub eligibility: Vec<EligibilityRow>,
    /// Every line of the period with its rate, FX and earning (`earnings_lines.parquet`).
    pub lines: DataFrame,
    pub fx_gaps: Vec<FxGap>,
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

/// A statement line's key: booking, category, line currency, rate text.
type CategoryKey = (Booking, String, String, Option<String>);

/// A statement line's running totals: lines, revenue in 10^-6 units, exact earning.
#[derive(Default)]
struct CategoryTotals {
    lines: u64,
    revenue_micro: i128,
    earning: ExactSum,
}

#[derive(Default)]
struct PartnerAccumulator {
    earned: ExactSum,
    adjustments: ExactSum,
    own_lines: u64,
    late_lines: u64,
    categories: BTreeMap<CategoryKey, CategoryTotals>,
}

/// Column builders of `earnings_lines.parquet`.
struct LineColumns {
    text: Vec<StringChunkedBuilder>,
    line: Vec<i64>,
    eligible: Vec<bool>,
}

const LINE_TEXT_COLUMNS: [&str; 14] = [
    "record_id",
    "partner_id",
    "customer_id",
    "product_category",
    "billing_month",
    "amount",
    "currency",
    "source_file",
    "booking",
    "program_id",
    "rate",
    "payout_currency",
    "fx_rate",
    "earning",
];

impl LineColumns {
    fn new() -> Self {
        Self {
            text: LINE_TEXT_COLUMNS
                .iter()
                .map(|n| StringChunkedBuilder::new((*n).into(), 1024))
                .collect(),
            line: Vec::new(),
            eligible: Vec::new(),
        }
    }

    fn push(&mut self, values: [Option<&str>; 14], line: i64, eligible: bool) {
        for (builder, value) in self.text.iter_mut().zip(values) {
            builder.append_option(value);
        }
        self.line.push(line);
        self.eligible.push(eligible);
    }

    fn finish(self) -> PolarsResult<DataFrame> {
        let height = self.line.len();
        let mut columns: Vec<Column> = self
            .text
            .into_iter()
            .map(|b| b.finish().into_column())
            .collect();
        columns.insert(
            8,
            Int64Chunked::from_vec("line".into(), self.line).into_column(),
        );
        columns.push(BooleanChunked::from_slice("eligible".into(), &self.eligible).into_column());
        DataFrame::new(height, columns)
    }
}

/// One stored segment as the computation sees it.
pub struct SegmentFrame {
    pub frame: DataFrame,
    /// Its late lines are not yet booked into a closed period.
    pub late_unbooked: bool,
}

/// Computes period `period` from the lines of `segments`, the snapshot and the balances of the
/// last closed period. Pure: the same inputs give the same figures, in the same order.
pub fn compute_period(
    master: &MasterData,
    period: Period,
    segments: &[SegmentFrame],
    balances: &HashMap<String, StoredBalance>,
) -> Result<PeriodComputation, ComputeError> {
    check_configuration(master)?;
    let partner_list: Vec<&Partner> = master.partners.values().collect();
    let partner_index: HashMap<&str, usize> = partner_list
        .iter()
        .enumerate()
        .map(|(i, p)| (p.partner_id.as_str(), i))
        .collect();
    let mut accumulators: Vec<PartnerAccumulator> = partner_list
        .iter()
        .map(|_| PartnerAccumulator::default())
        .collect();
    let mut eligible_cache: HashMap<(usize, Period), bool> = HashMap::new();
    let mut lines = LineColumns::new();
    let mut fx_gaps = Vec::new();

    let period_text = period.to_string();
    for segment in segments {
        let frame = &segment.frame;
        let text =
            |name: &str| -> PolarsResult<StringChunked> { Ok(frame.column(name)?.str()?.clone()) };
        let (record_id, partner_id, customer_id, category) = (
            text("record_id")?,
            text("partner_id")?,
            text("customer_id")?,
            text("product_category")?,
        );
        let (billing_month, amount, currency, source_file) = (
            text("billing_month")?,
            text("amount")?,
            text("currency")?,
            text("source_file")?,
        );
        let amount_micro = frame.column("amount_micro")?.i64()?.clone();
        let line_no = frame.column("line")?.i64()?.clone();
        let late = frame.column("late")?.bool()?.clone();
        for row in 0..frame.height() {
            let is_late = late.get(row).unwrap_or(false);
            let month_text = billing_month.get(row).unwrap_or("");
            let booking = if is_late && segment.late_unbooked {
                Booking::Adjustment
            } else if !is_late && month_text == period_text {
                Booking::Earned
            } else {
                continue;
            };
            let Ok(month) = month_text.parse::<Period>() else {
                continue;
            };
            let pid = partner_id.get(row).unwrap_or("");
            let Some(&index) = partner_index.get(pid) else {
                tracing::warn!(
                    partner_id = pid,
                    "ingested line of a partner no longer in partners.csv is skipped"
                );
                continue;
            };
            let partner = partner_list[index];
            let program = master.programs.for_type(partner.partner_type);
            let eligible = program.is_some()
                && *eligible_cache.entry((index, month)).or_insert_with(|| {
                    eligibility::verdict(master, partner, month.as_of_date())
                        .is_some_and(|(_, reasons)| reasons.is_empty())
                });
            let category_text = category.get(row).unwrap_or("");
            let line_currency_text = currency.get(row).unwrap_or("");
            let micro = amount_micro.get(row).unwrap_or(0);
            let rate = program
                .filter(|_| eligible)
                .and_then(|p| p.rate(category_text, month));
            let payout = partner.payout_currency;
            let mut fx_text = None;
            let mut earning = None;
            if let Some(rate) = rate {
                let fx = if line_currency_text == payout.code() {
                    Some(None)
                } else {
                    Currency::parse(line_currency_text)
                        .and_then(|c| master.fx.get(month, c, payout))
                        .map(|fx| {
                            fx_text = Some(fx.text.as_str());
                            Some(fx.scaled)
                        })
                };
                match fx {
                    Some(fx) => {
                        let value = line_earning(micro, rate.scaled, fx)
                            .map_err(|source| ComputeError::Overflow { partner_id: pid.to_owned(), source })?;
                        earning = Some(value);
                    }
                    None => fx_gaps.push(FxGap {
                        source_file: source_file.get(row).unwrap_or("").to_owned(),
                        line: line_no.get(row).unwrap_or(0) as u64,
                        record_id: record_id.get(row).unwrap_or("").to_owned(),
                        detail: format!("no FX rate for {month} {line_currency_text}->{payout} (rate removed after ingest)"),
                    }),
                }
            }
            let accumulator = &mut accumulators[index];
            match booking {
                Booking::Earned => accumulator.own_lines += 1,
                Booking::Adjustment => accumulator.late_lines += 1,
            }
            if let Some(value) = earning {
                match booking {
                    Booking::Earned => accumulator.earned.add(value),
                    Booking::Adjustment => accumulator.adjustments.add(value),
                }
            }
            if program.is_some() {
                let key = (
                    booking,
                    category_text.to_owned(),
                    line_currency_text.to_owned(),
                    rate.map(|r| r.text.clone()),
                );
                let entry = accumulator.categories.entry(key).or_default();
                entry.lines += 1;
                entry.revenue_micro += i128::from(micro);
                if let Some(value) = earning {
                    entry.earning.add(value);
                }
            }
            let earning_text = earning.map(|e| format_scaled(e, EARNING_SCALE, 6));
            lines.push(
                [
                    record_id.get(row),
                    Some(pid),
                    customer_id.get(row),
                    Some(category_text),
                    Some(month_text),
                    amount.get(row),
                    Some(line_currency_text),
                    source_file.get(row),
                    Some(booking.as_str()),
                    program.map(|p| p.id.as_str()),
                    rate.map(|r| r.text.as_str()),
                    Some(payout.code()),
                    fx_text,
                    earning_text.as_deref(),
                ],
                line_no.get(row).unwrap_or(0),
                eligible,
            );
        }
    }

    let as_of = period.as_of_date();
    let mut payouts = Vec::new();
    let mut eligibility_rows = Vec::new();
    for (index, partner) in partner_list.iter().enumerate() {
        let Some((program, reasons)) = eligibility::verdict(master, partner, as_of) else {
            continue;
        };
        let accumulator = &accumulators[index];
        eligibility_rows.push(EligibilityRow {
            partner_id: partner.partner_id.clone(),
            program_id: program.id.clone(),
            reasons,
            revenue_lines: accumulator.own_lines,
        });
        let currency = partner.payout_currency;
        let before = match balances.get(&partner.partner_id) {
            Some(stored) if stored.currency != currency && !stored.balances.is_zero() => {
                return Err(ComputeError::CurrencyChanged {
                    partner_id: partner.partner_id.clone(),
                    stored: stored.currency,
                    current: currency,
                });
            }
            Some(stored) => stored.balances,
            None => Balances::default(),
        };
        let minor = currency.minor_units().unwrap_or(0);
        let overflow = |source| ComputeError::Overflow {
            partner_id: partner.partner_id.clone(),
            source,
        };
        let earned = accumulator.earned.round_to_minor(minor).map_err(overflow)?;
        let adjustments = accumulator
            .adjustments
            .round_to_minor(minor)
            .map_err(overflow)?;
        let hold_reasons =
            eligibility::hold_reasons(partner, master.profile(&partner.partner_id), as_of);
        // Invariant: check_configuration found a threshold for every programme partner's currency.
        let min_payout = program
            .min_payout
            .get(&currency)
            .copied()
            .unwrap_or(Decimal::ZERO);
        let settlement = ledger::settle(
            before,
            earned,
            adjustments,
            !hold_reasons.is_empty(),
            min_payout,
        );
        let has_lines = accumulator.own_lines + accumulator.late_lines > 0;
        if !(has_lines || !before.is_zero() || !settlement.after.is_zero()) {
            continue;
        }
        let categories = accumulator
            .categories
            .iter()
            .map(
                |((booking, category, line_currency, rate), totals)| CategoryLine {
                    booking: *booking,
                    product_category: category.clone(),
                    line_currency: line_currency.clone(),
                    rate: rate.clone(),
                    lines: totals.lines,
                    revenue: format_scaled(
                        totals.revenue_micro,
                        crate::domain::money::AMOUNT_SCALE,
                        2,
                    ),
                    earning: earning_text(totals.earning, rate.is_some()),
                },
            )
            .collect();
        payouts.push(PartnerFigures {
            partner_id: partner.partner_id.clone(),
            partner_name: partner.name.clone(),
            program_id: program.id.clone(),
            currency,
            settlement,
            hold_reasons,
            categories,
        });
    }
    Ok(PeriodComputation {
        period,
        payouts,
        eligibility: eligibility_rows,
        lines: lines.finish()?,
        fx_gaps,
    })
}

fn earning_text(sum: ExactSum, rated: bool) -> String {
    if !rated {
        return "0".to_owned();
    }
    // Exact to 16 places; shown to the 6 places of converted lines unless more are needed.
    sum.exact_text()
}
