//! Pure computation of a period (SPEC §3): lines × rates × FX -> line earnings -> period totals
//! -> settlements. Works column by column over the stored revenue segments; rounding is done
//! only through `domain::money` at the places the SPEC names.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use polars::prelude::*;
use rust_decimal::Decimal;

use crate::domain::Rate;
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

/// A statement line's key: partner, booking, category id, line-currency id, rate identity.
/// Ids index `Interner` strings; the rate is identified by its address in the programs.
type CategoryKey = (usize, Booking, u32, u32, Option<usize>);

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
}

/// Small strings seen many times (categories, currencies), stored once.
#[derive(Default)]
struct Interner {
    ids: FxHashMap<String, u32>,
    texts: Vec<String>,
}

impl Interner {
    fn id(&mut self, text: &str) -> u32 {
        if let Some(id) = self.ids.get(text) {
            return *id;
        }
        let id = self.texts.len() as u32;
        self.texts.push(text.to_owned());
        self.ids.insert(text.to_owned(), id);
        id
    }

    fn text(&self, id: u32) -> &str {
        &self.texts[id as usize]
    }
}

/// Column builders of `earnings_lines.parquet`, one batch per segment.
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
    fn new(capacity: usize) -> Self {
        Self {
            text: LINE_TEXT_COLUMNS
                .iter()
                .map(|n| StringChunkedBuilder::new((*n).into(), capacity))
                .collect(),
            line: Vec::with_capacity(capacity),
            eligible: Vec::with_capacity(capacity),
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

/// The computation of one period, fed one segment at a time so that memory stays bounded by a
/// segment, not the month. Pure: the same segments in the same order give the same figures.
pub struct PeriodComputer<'m> {
    master: &'m MasterData,
    period: Period,
    period_text: String,
    partners: Vec<&'m Partner>,
    partner_index: FxHashMap<&'m str, usize>,
    accumulators: Vec<PartnerAccumulator>,
    categories: FxHashMap<CategoryKey, CategoryTotals>,
    rates: FxHashMap<usize, &'m Rate>,
    interner: Interner,
    eligible: FxHashMap<(usize, Period), bool>,
    fx_gaps: Vec<FxGap>,
}

impl<'m> PeriodComputer<'m> {
    pub fn new(master: &'m MasterData, period: Period) -> Result<Self, ComputeError> {
        check_configuration(master)?;
        let partners: Vec<&Partner> = master.partners.values().collect();
        let partner_index = partners
            .iter()
            .enumerate()
            .map(|(i, p)| (p.partner_id.as_str(), i))
            .collect();
        let accumulators = partners
            .iter()
            .map(|_| PartnerAccumulator::default())
            .collect();
        Ok(Self {
            master,
            period,
            period_text: period.to_string(),
            partners,
            partner_index,
            accumulators,
            categories: FxHashMap::default(),
            rates: FxHashMap::default(),
            interner: Interner::default(),
            eligible: FxHashMap::default(),
            fx_gaps: Vec::new(),
        })
    }

    /// Adds the lines of one stored segment that belong to the period (its own month, or late
    /// lines not yet booked) and returns them with rate, FX and earning, for the line report.
    pub fn add_segment(
        &mut self,
        frame: &DataFrame,
        late_unbooked: bool,
    ) -> Result<DataFrame, ComputeError> {
        let texts = |name: &str| -> PolarsResult<Vec<Option<&str>>> {
            Ok(frame.column(name)?.str()?.iter().collect())
        };
        let (record_id, partner_id, customer_id) = (
            texts("record_id")?,
            texts("partner_id")?,
            texts("customer_id")?,
        );
        let (category, billing_month, amount) = (
            texts("product_category")?,
            texts("billing_month")?,
            texts("amount")?,
        );
        let (currency, source_file) = (texts("currency")?, texts("source_file")?);
        let amount_micro: Vec<i64> = frame
            .column("amount_micro")?
            .i64()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect();
        let line_no: Vec<i64> = frame
            .column("line")?
            .i64()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect();
        let late: Vec<bool> = frame
            .column("late")?
            .bool()?
            .iter()
            .map(|v| v.unwrap_or(false))
            .collect();
        let mut lines = LineColumns::new(frame.height().min(1 << 16));
        let master = self.master;
        for row in 0..frame.height() {
            let month_text = billing_month[row].unwrap_or("");
            let booking = if late[row] && late_unbooked {
                Booking::Adjustment
            } else if !late[row] && month_text == self.period_text {
                Booking::Earned
            } else {
                continue;
            };
            let Ok(month) = month_text.parse::<Period>() else {
                continue;
            };
            let pid = partner_id[row].unwrap_or("");
            let Some(&index) = self.partner_index.get(pid) else {
                tracing::warn!(
                    partner_id = pid,
                    "ingested line of a partner no longer in partners.csv is skipped"
                );
                continue;
            };
            let partner = self.partners[index];
            let program = master.programs.for_type(partner.partner_type);
            let eligible = program.is_some()
                && *self.eligible.entry((index, month)).or_insert_with(|| {
                    eligibility::verdict(master, partner, month.as_of_date())
                        .is_some_and(|(_, reasons)| reasons.is_empty())
                });
            let category_text = category[row].unwrap_or("");
            let line_currency_text = currency[row].unwrap_or("");
            let micro = amount_micro[row];
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
                    None => self.fx_gaps.push(FxGap {
                        source_file: source_file[row].unwrap_or("").to_owned(),
                        line: line_no[row] as u64,
                        record_id: record_id[row].unwrap_or("").to_owned(),
                        detail: format!("no FX rate for {month} {line_currency_text}->{payout} (rate removed after ingest)"),
                    }),
                }
            }
            let accumulator = &mut self.accumulators[index];
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
                let rate_key = rate.map(|r| {
                    let address = r as *const Rate as usize;
                    self.rates.insert(address, r);
                    address
                });
                let key = (
                    index,
                    booking,
                    self.interner.id(category_text),
                    self.interner.id(line_currency_text),
                    rate_key,
                );
                let totals = self.categories.entry(key).or_default();
                totals.lines += 1;
                totals.revenue_micro += i128::from(micro);
                if let Some(value) = earning {
                    totals.earning.add(value);
                }
            }
            let earning_text = earning.map(|e| format_scaled(e, EARNING_SCALE, 6));
            lines.push(
                [
                    record_id[row],
                    Some(pid),
                    customer_id[row],
                    Some(category_text),
                    Some(month_text),
                    amount[row],
                    Some(line_currency_text),
                    source_file[row],
                    Some(booking.as_str()),
                    program.map(|p| p.id.as_str()),
                    rate.map(|r| r.text.as_str()),
                    Some(payout.code()),
                    fx_text,
                    earning_text.as_deref(),
                ],
                line_no[row],
                eligible,
            );
        }
        Ok(lines.finish()?)
    }

    /// Settles every partner against the balances of the last closed period.
    pub fn finish(
        self,
        balances: &HashMap<String, StoredBalance>,
    ) -> Result<PeriodComputation, ComputeError> {
        let mut categories_by_partner: HashMap<usize, Vec<CategoryLine>> = HashMap::new();
        for ((index, booking, category, currency, rate), totals) in &self.categories {
            let rate_text = rate
                .and_then(|r| self.rates.get(&r))
                .map(|r| r.text.clone());
            categories_by_partner
                .entry(*index)
                .or_default()
                .push(CategoryLine {
                    booking: *booking,
                    product_category: self.interner.text(*category).to_owned(),
                    line_currency: self.interner.text(*currency).to_owned(),
                    revenue: format_scaled(
                        totals.revenue_micro,
                        crate::domain::money::AMOUNT_SCALE,
                        2,
                    ),
                    earning: earning_text(totals.earning, rate_text.is_some()),
                    rate: rate_text,
                    lines: totals.lines,
                });
        }
        let as_of = self.period.as_of_date();
        let mut payouts = Vec::new();
        let mut eligibility_rows = Vec::new();
        for (index, partner) in self.partners.iter().enumerate() {
            let Some((program, reasons)) = eligibility::verdict(self.master, partner, as_of) else {
                continue;
            };
            let accumulator = &self.accumulators[index];
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
                eligibility::hold_reasons(partner, self.master.profile(&partner.partner_id), as_of);
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
            let mut categories = categories_by_partner.remove(&index).unwrap_or_default();
            categories.sort_by(|a, b| {
                (a.booking, &a.product_category, &a.line_currency, &a.rate).cmp(&(
                    b.booking,
                    &b.product_category,
                    &b.line_currency,
                    &b.rate,
                ))
            });
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
            period: self.period,
            payouts,
            eligibility: eligibility_rows,
            fx_gaps: self.fx_gaps,
        })
    }
}

/// An empty line report, with the report's columns.
pub fn empty_lines() -> PolarsResult<DataFrame> {
    LineColumns::new(0).finish()
}

fn earning_text(sum: ExactSum, rated: bool) -> String {
    if !rated {
        return "0".to_owned();
    }
    // Exact to 16 places; shown to the 6 places of converted lines unless more are needed.
    sum.exact_text()
}
